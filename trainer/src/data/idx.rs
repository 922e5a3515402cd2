//! IDX files, gzipped or not: MNIST's directory of four files, or one
//! images file of any name with its labels beside it.
//!
//! An IDX file is a big-endian header (magic `0x0000_08DD` where `DD` is the
//! number of dimensions, then one `u32` per dimension) followed by the raw
//! unsigned bytes. Images have 3 dimensions (count, rows, columns), labels 1.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, Images, Labels};
use engine::idx::{IdxError, IMAGES_MAGIC, LABELS_MAGIC};

/// The four standard file names, without the optional `.gz`.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels file name.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images file name.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels file name.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// MNIST: training and test images with their labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// 60,000 training images (fewer with a limit).
    pub train_images: Images,
    /// Their labels (used only for evaluation and the label map).
    pub train_labels: Vec<u8>,
    /// 10,000 test images.
    pub test_images: Images,
    /// Their labels.
    pub test_labels: Vec<u8>,
}

/// Reads a whole file, decompressing it when it is gzip (by content: a file
/// named `.gz` that is not gzip is an error, a gzip file without `.gz` is fine).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Io {
                path: path.into(),
                source: std::io::Error::new(source.kind(), "file not found"),
            }
        } else {
            DataError::Io {
                path: path.into(),
                source,
            }
        }
    })?;
    let is_gzip = raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
    let named_gz = path.extension().is_some_and(|e| e == "gz");
    if !is_gzip {
        if named_gz {
            return Err(DataError::Gzip {
                path: path.into(),
                detail: "missing gzip magic 1f 8b".into(),
            });
        }
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip {
            path: path.into(),
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// The [`DataError`] of an IDX view's error; `what` says what the file
/// should hold (for a wrong magic).
fn idx_error(e: IdxError, path: &Path, what: &'static str) -> DataError {
    let path = path.to_path_buf();
    match e {
        IdxError::BadMagic { found, expected } => DataError::Magic {
            path,
            found,
            expected,
            what,
        },
        IdxError::Truncated { needed, available } => DataError::Truncated {
            path,
            expected: needed,
            found: available,
        },
        IdxError::TrailingBytes { extra } => DataError::TrailingBytes { path, extra },
        other => DataError::Invalid {
            path,
            detail: other.to_string(),
        },
    }
}

/// Parses IDX image bytes (already decompressed) through the engine's
/// view ([`engine::idx::Images`]); `path` names them in errors.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<Images, DataError> {
    let view = engine::idx::Images::new_checked(bytes)
        .map_err(|e| idx_error(e, path, "images: unsigned bytes, 3 dimensions"))?;
    Ok(Images {
        n: view.len(),
        rows: view.rows(),
        cols: view.cols(),
        pixels: view.pixels().to_vec(),
    })
}

/// Parses IDX label bytes (already decompressed) through the engine's view
/// ([`engine::idx::Labels`]); any byte is a class (MNIST's are digits,
/// EMNIST's letters 1–26); `path` names them in errors.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let what = "labels: unsigned bytes, 1 dimension";
    let view = engine::idx::Labels::new_checked(bytes).map_err(|e| idx_error(e, path, what))?;
    Ok(view.labels().to_vec())
}

/// Reads an IDX images file (gzipped or not).
pub fn read_images(path: impl AsRef<Path>) -> Result<Images, DataError> {
    let path = path.as_ref();
    parse_images(&read_maybe_gzip(path)?, path)
}

/// Reads an IDX labels file (gzipped or not).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = path.as_ref();
    parse_labels(&read_maybe_gzip(path)?, path)
}

/// Finds `name` or `name.gz` in `dir` (the uncompressed file wins).
pub fn find(dir: &Path, name: &'static str) -> Result<PathBuf, DataError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::MissingFile {
        dir: dir.into(),
        name,
    })
}

/// The labels file beside an images file by the usual naming
/// (`-images-` → `-labels-`, `idx3` → `idx1`, also `images` → `labels`),
/// gzipped or not, if there is one.
pub fn labels_beside(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let mut candidates = Vec::new();
    for (from, to) in [("-images-", "-labels-"), ("images", "labels")] {
        if name.contains(from) {
            candidates.push(name.replacen(from, to, 1).replace("idx3", "idx1"));
        }
    }
    candidates.into_iter().find_map(|c| {
        let base = c.strip_suffix(".gz").unwrap_or(&c).to_string();
        [base.clone(), format!("{base}.gz")]
            .into_iter()
            .map(|n| images.with_file_name(n))
            .find(|p| p.is_file() && p != images)
    })
}

/// One IDX images file of any name, with the labels file beside it when
/// there is one ([`labels_beside`]).
pub fn read_file(path: &Path) -> Result<Dataset, DataError> {
    let images = read_images(path)?;
    let labels = match labels_beside(path) {
        Some(labels_path) => {
            let values = read_labels(&labels_path)?;
            check_count(path, &images, &labels_path, &values)?;
            Some(Labels::numbers(values))
        }
        None => None,
    };
    Ok(Dataset {
        images,
        labels,
        source: path.into(),
    })
}

fn check_count(
    images_path: &Path,
    images: &Images,
    labels_path: &Path,
    labels: &[u8],
) -> Result<(), DataError> {
    if labels.len() != images.n {
        return Err(DataError::CountMismatch {
            images_path: images_path.into(),
            images: images.n,
            labels_path: labels_path.into(),
            labels: labels.len(),
        });
    }
    Ok(())
}

/// The images named `images` in `dir`, with the labels named `labels` when
/// that file is there.
pub(super) fn read_pair(
    dir: &Path,
    images: &'static str,
    labels: &'static str,
) -> Result<Dataset, DataError> {
    let images_path = find(dir, images)?;
    let imgs = read_images(&images_path)?;
    let labels = match find(dir, labels) {
        Ok(labels_path) => {
            let values = read_labels(&labels_path)?;
            check_count(&images_path, &imgs, &labels_path, &values)?;
            Some(Labels::numbers(values))
        }
        Err(_) => None,
    };
    Ok(Dataset {
        images: imgs,
        labels,
        source: images_path,
    })
}

fn load_pair(
    dir: &Path,
    images: &'static str,
    labels: &'static str,
) -> Result<(Images, Vec<u8>), DataError> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let imgs = read_images(&images_path)?;
    let labs = read_labels(&labels_path)?;
    check_count(&images_path, &imgs, &labels_path, &labs)?;
    Ok((imgs, labs))
}

impl Mnist {
    /// Loads the four standard files from `dir` (images of any one size,
    /// the same in both sets).
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist, DataError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(DataError::MissingPath(dir.into()));
        }
        let (train_images, train_labels) = load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let (test_images, test_labels) = load_pair(dir, TEST_IMAGES, TEST_LABELS)?;
        if (test_images.rows, test_images.cols) != (train_images.rows, train_images.cols) {
            return Err(DataError::WrongSize {
                path: find(dir, TEST_IMAGES)?,
                width: test_images.cols,
                height: test_images.rows,
                expected_width: train_images.cols,
                expected_height: train_images.rows,
                why: "the training images".into(),
            });
        }
        Ok(Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    /// Keeps only the first `n` training images (and labels).
    pub fn limit_train(&mut self, n: usize) {
        self.train_images.truncate(n);
        self.train_labels.truncate(self.train_images.n);
    }
}

/// Encodes images as IDX bytes (used by tests and to write small data sets).
pub fn encode_images(images: &Images) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    for v in [
        IMAGES_MAGIC,
        images.n as u32,
        images.rows as u32,
        images.cols as u32,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encodes labels as IDX bytes.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TWO_2X3: [u8; 28] = [
        0, 0, 8, 3, // magic
        0, 0, 0, 2, // n
        0, 0, 0, 2, // rows
        0, 0, 0, 3, // cols
        1, 2, 3, 4, 5, 6, // image 0
        7, 8, 9, 10, 11, 12, // image 1
    ];
    const THREE_LABELS: [u8; 11] = [0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9];

    fn p() -> &'static Path {
        Path::new("x")
    }

    #[test]
    fn parses_literal_images_and_labels() {
        let imgs = parse_images(&TWO_2X3, p()).unwrap();
        assert_eq!((imgs.n, imgs.rows, imgs.cols), (2, 2, 3));
        assert_eq!(imgs.image(1), &[7, 8, 9, 10, 11, 12]);
        assert_eq!(parse_labels(&THREE_LABELS, p()).unwrap(), vec![7, 0, 9]);
    }

    #[test]
    fn rejects_truncated_trailing_and_magic() {
        let e = parse_images(&TWO_2X3[..27], p()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::Truncated {
                    expected: 28,
                    found: 27,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_images(&TWO_2X3[..10], p()).unwrap_err();
        assert!(
            matches!(e, DataError::Truncated { expected: 16, .. }),
            "{e}"
        );
        let mut long = TWO_2X3.to_vec();
        long.push(0);
        assert!(matches!(
            parse_images(&long, p()).unwrap_err(),
            DataError::TrailingBytes { extra: 1, .. }
        ));
        let e = parse_images(&THREE_LABELS, p()).unwrap_err();
        assert!(matches!(e, DataError::Magic { found: 0x801, .. }), "{e}");
        assert!(e.to_string().contains("wrong IDX magic 0x00000801"), "{e}");
        let e = parse_labels(&TWO_2X3, p()).unwrap_err();
        assert!(matches!(e, DataError::Magic { found: 0x803, .. }));
        // Any byte is a class (EMNIST's letters are 1-26).
        let mut letters = THREE_LABELS;
        letters[9] = 26;
        assert_eq!(parse_labels(&letters, p()).unwrap(), vec![7, 26, 9]);
    }

    #[test]
    fn a_single_file_finds_its_labels_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("emnist-digits-test-images-idx3-ubyte.gz");
        let imgs = Images {
            n: 2,
            rows: 2,
            cols: 3,
            pixels: (1..=12).collect(),
        };
        std::fs::write(&images, gz(&encode_images(&imgs))).unwrap();
        let set = read_file(&images).unwrap();
        assert_eq!((set.images, set.labels), (imgs.clone(), None));
        let labels = dir.path().join("emnist-digits-test-labels-idx1-ubyte");
        std::fs::write(&labels, encode_labels(&[4, 2])).unwrap();
        assert_eq!(labels_beside(&images), Some(labels.clone()));
        let set = read_file(&images).unwrap();
        assert_eq!(set.labels.unwrap().values, vec![4, 2]);
        std::fs::write(&labels, encode_labels(&[4, 2, 1])).unwrap();
        let e = read_file(&images).unwrap_err().to_string();
        assert!(e.ends_with("has 3 labels"), "{e}");
    }

    #[test]
    fn huge_announced_count_is_truncation_not_overflow() {
        let mut b = TWO_2X3;
        b[4..8].copy_from_slice(&[0xff; 4]);
        b[8..12].copy_from_slice(&[0xff; 4]);
        assert!(matches!(
            parse_images(&b, p()).unwrap_err(),
            DataError::Truncated { .. }
        ));
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_gzip_by_content_and_rejects_fake_gz() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.gz");
        std::fs::write(&a, gz(&THREE_LABELS)).unwrap();
        assert_eq!(read_labels(&a).unwrap(), vec![7, 0, 9]);
        let b = dir.path().join("b");
        std::fs::write(&b, gz(&THREE_LABELS)).unwrap();
        assert_eq!(read_labels(&b).unwrap(), vec![7, 0, 9]);
        let c = dir.path().join("c.gz");
        std::fs::write(&c, THREE_LABELS).unwrap();
        let e = read_labels(&c).unwrap_err();
        assert!(matches!(e, DataError::Gzip { .. }), "{e}");
        let mut broken = gz(&TWO_2X3);
        broken.truncate(broken.len() - 12);
        std::fs::write(&c, broken).unwrap();
        assert!(matches!(
            read_images(&c).unwrap_err(),
            DataError::Gzip { .. }
        ));
        let e = read_images(dir.path().join("none")).unwrap_err();
        assert!(
            e.to_string().contains("none: cannot read: file not found"),
            "{e}"
        );
    }

    fn write_set(dir: &Path, n_train: usize, n_labels: usize, side: usize) {
        let img = |n| Images {
            n,
            rows: side,
            cols: side,
            pixels: vec![3; n * side * side],
        };
        std::fs::write(dir.join(TRAIN_IMAGES), encode_images(&img(n_train))).unwrap();
        std::fs::write(
            dir.join(format!("{TRAIN_LABELS}.gz")),
            gz(&encode_labels(&vec![1; n_labels])),
        )
        .unwrap();
        std::fs::write(dir.join(TEST_IMAGES), encode_images(&img(2))).unwrap();
        std::fs::write(dir.join(TEST_LABELS), encode_labels(&[4, 5])).unwrap();
    }

    #[test]
    fn loads_a_directory_and_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), 3, 3, 28);
        let mut m = Mnist::load(dir.path()).unwrap();
        assert_eq!(m.train_images.n, 3);
        assert_eq!(m.test_labels, vec![4, 5]);
        m.limit_train(2);
        assert_eq!((m.train_images.n, m.train_labels.len()), (2, 2));
        assert_eq!(m.train_images.pixels.len(), 2 * 28 * 28);

        write_set(dir.path(), 3, 4, 28);
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::CountMismatch {
                    images: 3,
                    labels: 4,
                    ..
                }
            ),
            "{e}"
        );
        // Any one size: 8x8 in both sets is fine.
        write_set(dir.path(), 3, 3, 8);
        std::fs::write(
            dir.path().join(TEST_IMAGES),
            encode_images(&Images {
                n: 1,
                rows: 8,
                cols: 8,
                pixels: vec![0; 64],
            }),
        )
        .unwrap();
        std::fs::write(dir.path().join(TEST_LABELS), encode_labels(&[2])).unwrap();
        assert_eq!(Mnist::load(dir.path()).unwrap().test_images.rows, 8);
        std::fs::write(
            dir.path().join(TEST_IMAGES),
            encode_images(&Images {
                n: 1,
                rows: 7,
                cols: 8,
                pixels: vec![0; 56],
            }),
        )
        .unwrap();
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("images are 8x7, expected 8x8 (the training images)"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join(TEST_LABELS)).unwrap();
        write_set(dir.path(), 3, 3, 28);
        std::fs::remove_file(dir.path().join(TEST_LABELS)).unwrap();
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("missing t10k-labels-idx1-ubyte"),
            "{e}"
        );
        let e = Mnist::load(dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, DataError::MissingPath(_)));
    }
}
