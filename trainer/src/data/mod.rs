//! MNIST in IDX format, gzipped or not, with one-line errors that name the file.
//!
//! An IDX file is a big-endian header (magic `0x0000_08DD` where `DD` is the
//! number of dimensions, then one `u32` per dimension) followed by the raw
//! unsigned bytes. Images have 3 dimensions (count, rows, columns), labels 1.

mod split;
pub use split::{batch_pixels, Split};

use std::io::Read;
use std::path::{Path, PathBuf};

pub use engine::idx::{IdxError, IMAGES_MAGIC, LABELS_MAGIC};

/// MNIST image side.
pub const SIDE: usize = 28;
/// Pixels per MNIST image.
pub const PIXELS: usize = SIDE * SIDE;

/// An MNIST image's shape as a model file records it.
pub const IMAGE_SHAPE: engine::ImageShape = engine::ImageShape {
    width: SIDE as u16,
    height: SIDE as u16,
};

/// The four standard file names, without the optional `.gz`.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels file name.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images file name.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels file name.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Everything that can be wrong with a data directory or file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data directory does not exist.
    #[error("{}: data directory not found", .0.display())]
    MissingDir(PathBuf),
    /// A required file is absent (neither plain nor `.gz`).
    #[error("{}: missing {name} (or {name}.gz)", .dir.display())]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The base file name.
        name: &'static str,
    },
    /// The file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A `.gz` file (or a file starting with the gzip magic) does not decompress.
    #[error("{}: not a valid gzip file ({detail})", .path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor said.
        detail: String,
    },
    /// The IDX magic number is not the expected one.
    #[error("{}: wrong IDX magic {found:#010x}, expected {expected:#010x} ({what})", .path.display())]
    Magic {
        /// The file.
        path: PathBuf,
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
        /// What the file should hold.
        what: &'static str,
    },
    /// The file ends before the header or the data it announces.
    #[error("{}: truncated: header announces {expected} bytes, file has {found}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes needed.
        expected: usize,
        /// Bytes present (after decompression).
        found: usize,
    },
    /// The file has bytes beyond what its header announces.
    #[error("{}: {extra} unexpected bytes after the data the header announces", .path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// How many bytes too many.
        extra: usize,
    },
    /// Images are not 28×28.
    #[error("{}: images are {rows}x{cols}, expected 28x28", .path.display())]
    NotMnistShape {
        /// The file.
        path: PathBuf,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
    },
    /// Image and label files disagree on the count.
    #[error("{} has {images} images but {} has {labels} labels", .images_path.display(), .labels_path.display())]
    CountMismatch {
        /// Images file.
        images_path: PathBuf,
        /// Image count.
        images: usize,
        /// Labels file.
        labels_path: PathBuf,
        /// Label count.
        labels: usize,
    },
    /// Anything else the IDX view refused.
    #[error("{}: {detail}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A label is not a digit.
    #[error("{}: label {value} at index {index} is not a digit 0-9", .path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Position.
        index: usize,
        /// Value found.
        value: u8,
    },
}

/// A stack of greyscale images, row-major, one byte per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n * rows * cols` bytes.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels per image.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i`'s bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels_per_image();
        &self.pixels[i * p..(i + 1) * p]
    }

    /// Keeps only the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        if n < self.n {
            self.n = n;
            self.pixels.truncate(n * self.pixels_per_image());
        }
    }
}

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
        IdxError::Shape { rows, cols, .. } => DataError::NotMnistShape { path, rows, cols },
        IdxError::Label { index, value, .. } => DataError::BadLabel { path, index, value },
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
/// ([`engine::idx::Labels`]), refusing any label that is not a digit;
/// `path` names them in errors.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let what = "labels: unsigned bytes, 1 dimension";
    let view = engine::idx::Labels::new_checked(bytes).map_err(|e| idx_error(e, path, what))?;
    view.check_max(9).map_err(|e| idx_error(e, path, what))?;
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

fn load_pair(
    dir: &Path,
    images: &'static str,
    labels: &'static str,
) -> Result<(Images, Vec<u8>), DataError> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let imgs = read_images(&images_path)?;
    if imgs.rows != SIDE || imgs.cols != SIDE {
        return Err(DataError::NotMnistShape {
            path: images_path,
            rows: imgs.rows,
            cols: imgs.cols,
        });
    }
    let labs = read_labels(&labels_path)?;
    if labs.len() != imgs.n {
        return Err(DataError::CountMismatch {
            images_path,
            images: imgs.n,
            labels_path,
            labels: labs.len(),
        });
    }
    Ok((imgs, labs))
}

impl Mnist {
    /// Loads the four standard files from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist, DataError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(DataError::MissingDir(dir.into()));
        }
        let (train_images, train_labels) = load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let (test_images, test_labels) = load_pair(dir, TEST_IMAGES, TEST_LABELS)?;
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
        let mut bad = THREE_LABELS;
        bad[9] = 10;
        assert!(matches!(
            parse_labels(&bad, p()).unwrap_err(),
            DataError::BadLabel {
                index: 1,
                value: 10,
                ..
            }
        ));
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
        assert_eq!(m.train_images.pixels.len(), 2 * PIXELS);

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
        write_set(dir.path(), 3, 3, 27);
        let e = Mnist::load(dir.path()).unwrap_err();
        assert!(
            e.to_string().ends_with("images are 27x27, expected 28x28"),
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
        assert!(matches!(e, DataError::MissingDir(_)));
    }
}
