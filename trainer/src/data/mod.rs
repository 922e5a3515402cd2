//! Image sets as the trainer and the harness read them: one [`Dataset`]
//! type, one reader per format, each with one-line errors that name the
//! file (and the row and column of a CSV).
//!
//! | what `PATH` is | reader | labels |
//! |---|---|---|
//! | a directory holding MNIST's IDX files (`train-images-idx3-ubyte[.gz]`…) | [`idx`] | the `-labels-` files |
//! | one IDX images file, any name, gzipped or not | [`idx`] | `--labels`, or the file named `-images-` → `-labels-` beside it |
//! | a folder of images (PNG, JPEG, BMP, PGM/PPM), searched recursively | [`folder`] | the sub-folder names, when every image sits in one |
//! | one image file | [`folder`] | none |
//! | a `.csv` file, one image per row | [`csv`] | a first column headed `label` (or one cell more than a square) |
//! | a `.npy` file, `uint8` or `float32`/`float64`, N×H×W or N×(H·W) | [`npy`] | `--labels` (a second `.npy`) |
//!
//! Every image of a set has the same size, which the set's [`Images`] carry
//! and the model file records. Labels are only ever used to score.

pub mod augment;
pub mod csv;
pub mod fixtures;
pub mod folder;
pub mod framing;
pub mod idx;
pub mod npy;
pub mod points;
pub mod polarity;
mod split;

pub use idx::{
    encode_images, encode_labels, find, parse_images, parse_labels, read_images, read_labels,
    read_maybe_gzip, Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
pub use points::Points;
pub use polarity::Invert;
pub use split::{batch_pixels, holdout, images_tensor, Split};

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

/// Everything that can be wrong with a data directory or file. Each
/// displays as one line that starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data path does not exist.
    #[error("{}: not found", .0.display())]
    MissingPath(PathBuf),
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
    /// An image differs in size from the set's first.
    #[error("{}: image is {width}x{height}, but {} is {first_width}x{first_height} (every image of a set must have one size)", .path.display(), .first.display())]
    MixedSizes {
        /// The first image of another size (in the set's order).
        path: PathBuf,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
        /// The set's first image.
        first: PathBuf,
        /// Its width.
        first_width: usize,
        /// Its height.
        first_height: usize,
    },
    /// Images of another size than the model's or the training set's.
    #[error("{}: images are {width}x{height}, expected {expected_width}x{expected_height} ({why})", .path.display())]
    WrongSize {
        /// The set.
        path: PathBuf,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
        /// Width expected.
        expected_width: usize,
        /// Height expected.
        expected_height: usize,
        /// Whose size it must match.
        why: String,
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
    /// A set without a single image.
    #[error("{}: no images{hint}", .path.display())]
    Empty {
        /// The set.
        path: PathBuf,
        /// What was looked for.
        hint: String,
    },
    /// A CSV cell that is not a pixel, or a row of another length.
    #[error("{}: row {row}, column {column}: {detail}", .path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        row: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        detail: String,
    },
    /// Anything else a reader refused.
    #[error("{}: {detail}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl DataError {
    /// [`DataError::Invalid`] for `path`.
    pub fn invalid(path: &Path, detail: impl Into<String>) -> DataError {
        DataError::Invalid {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// A stack of greyscale images, row-major, one byte per pixel (0 = paper,
/// 255 = ink once the set's polarity is settled, as in MNIST).
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Number of images.
    pub n: usize,
    /// Rows per image (the height).
    pub rows: usize,
    /// Columns per image (the width).
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

    /// The images' shape as a model file records it, or an error naming
    /// `path` when a side does not fit the format's 16 bits.
    pub fn shape(&self, path: &Path) -> Result<engine::ImageShape, DataError> {
        match (u16::try_from(self.cols), u16::try_from(self.rows)) {
            (Ok(width), Ok(height)) => Ok(engine::ImageShape { width, height }),
            _ => Err(DataError::invalid(
                path,
                format!("images of {}x{} are too large", self.cols, self.rows),
            )),
        }
    }
}

/// Labels of a set, used only to score clusters and to name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// One class index per image.
    pub values: Vec<u8>,
    /// The name of each class index, when the classes have names that are
    /// not their numbers (a folder of images in sub-folders `cat/`, `dog/`:
    /// the names sorted, the index into them the value).
    pub names: Option<Vec<String>>,
}

impl Labels {
    /// Labels that are their own names (digits, IDX or CSV labels).
    pub fn numbers(values: Vec<u8>) -> Labels {
        Labels {
            values,
            names: None,
        }
    }

    /// What class `value` is called.
    pub fn name(&self, value: u8) -> String {
        match &self.names {
            Some(names) => names
                .get(value as usize)
                .cloned()
                .unwrap_or_else(|| value.to_string()),
            None => value.to_string(),
        }
    }
}

/// One image set as read from one `PATH`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The images.
    pub images: Images,
    /// Their labels, when the source has them.
    pub labels: Option<Labels>,
    /// What was read, for messages and the report (a path).
    pub source: PathBuf,
}

impl Dataset {
    /// Keeps only the first `n` images (and labels).
    pub fn truncate(&mut self, n: usize) {
        self.images.truncate(n);
        if let Some(l) = &mut self.labels {
            l.values.truncate(self.images.n);
        }
    }

    /// The set's image shape (see [`Images::shape`]).
    pub fn shape(&self) -> Result<engine::ImageShape, DataError> {
        self.images.shape(&self.source)
    }

    /// One line: count, size, labels, source.
    pub fn describe(&self) -> String {
        let labels = match &self.labels {
            None => "unlabelled".to_string(),
            Some(l) => {
                let classes = l.values.iter().copied().max().map_or(0, |m| m as usize + 1);
                match &l.names {
                    Some(names) => {
                        format!("labelled, {} classes ({})", names.len(), names.join(" "))
                    }
                    None => format!("labelled, classes 0-{}", classes.saturating_sub(1)),
                }
            }
        };
        format!(
            "{}: {} images of {}x{}, {labels}",
            self.source.display(),
            self.images.n,
            self.images.cols,
            self.images.rows
        )
    }
}

/// How to read a `PATH` beyond what the path itself says.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// A labels file (IDX or `.npy`) for an IDX or `.npy` images file.
    pub labels: Option<PathBuf>,
    /// `--size WxH`: the image size of a CSV or an N×(H·W) `.npy` whose
    /// rows are not square.
    pub size: Option<(usize, usize)>,
    /// `--frame mnist`: every image framed MNIST-style into one size (then
    /// a folder's images may have any sizes), its polarity settled on its
    /// own first ([`framing`]).
    pub frame: Option<framing::Framing>,
}

/// Which half of a directory of MNIST's four files a single-set reader
/// takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `train-images-idx3-ubyte` (and its labels).
    Train,
    /// `t10k-images-idx3-ubyte` (and its labels).
    Test,
}

/// The image file extensions a folder reader decodes (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "pgm", "ppm", "pnm", "pbm"];

/// What kind of source `path` is, from the file system and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A directory holding MNIST's four IDX files (or at least its images).
    MnistDir,
    /// A folder of image files.
    ImageFolder,
    /// One image file.
    ImageFile,
    /// A `.csv` file.
    Csv,
    /// A `.npy` file.
    Npy,
    /// An IDX images file (anything else).
    Idx,
}

impl Format {
    /// Detects the format of `path` (which must exist).
    pub fn of(path: &Path) -> Result<Format, DataError> {
        if !path.exists() {
            return Err(DataError::MissingPath(path.into()));
        }
        if path.is_dir() {
            let mnist = [TRAIN_IMAGES, TEST_IMAGES]
                .iter()
                .any(|name| find(path, name).is_ok());
            return Ok(if mnist {
                Format::MnistDir
            } else {
                Format::ImageFolder
            });
        }
        let ext = extension(path);
        Ok(match ext.as_str() {
            "csv" => Format::Csv,
            "npy" => Format::Npy,
            e if IMAGE_EXTENSIONS.contains(&e) => Format::ImageFile,
            _ => Format::Idx,
        })
    }
}

/// The bytes of a file that must not be empty, with the path in any error.
pub(crate) fn read_nonempty(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(DataError::invalid(path, "empty file (0 bytes)"));
    }
    Ok(bytes)
}

/// The lower-case extension of `path` ("" without one).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads one image set from `path`, whatever its format (see the module's
/// table); a directory of MNIST's files gives its `part`.
pub fn read_set(path: &Path, part: Part, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let format = Format::of(path)?;
    let set = match format {
        Format::MnistDir => {
            let (images, labels) = match part {
                Part::Train => (TRAIN_IMAGES, TRAIN_LABELS),
                Part::Test => (TEST_IMAGES, TEST_LABELS),
            };
            idx::read_pair(path, images, labels)?
        }
        Format::ImageFolder => folder::read_folder(path, opts.frame)?,
        Format::ImageFile => folder::read_file(path)?,
        Format::Csv => csv::read(path, opts.size)?,
        Format::Npy => npy::read(path, opts.size)?,
        Format::Idx => idx::read_file(path)?,
    };
    let mut set = attach_labels(set, opts)?;
    // A folder's reader frames each image as it decodes it (its images may
    // differ in size); every other set has one size and is framed here.
    if let (Some(f), false) = (opts.frame, format == Format::ImageFolder) {
        set.images = f.frame_set(&set.images, path)?;
    }
    if set.images.n == 0 {
        return Err(DataError::Empty {
            path: path.into(),
            hint: String::new(),
        });
    }
    Ok(set)
}

/// Replaces `set`'s labels by those of `opts.labels` (IDX or `.npy`),
/// checking the count; with no labels file, `set` as it is (an IDX file's
/// neighbour `-labels-` file was found by its reader).
fn attach_labels(mut set: Dataset, opts: &ReadOptions) -> Result<Dataset, DataError> {
    let Some(path) = &opts.labels else {
        return Ok(set);
    };
    let values = if extension(path) == "npy" {
        npy::read_labels(path)?
    } else {
        read_labels(path)?
    };
    if values.len() != set.images.n {
        return Err(DataError::CountMismatch {
            images_path: set.source.clone(),
            images: set.images.n,
            labels_path: path.clone(),
            labels: values.len(),
        });
    }
    set.labels = Some(Labels::numbers(values));
    Ok(set)
}

/// A training set and, when the source has one, its test set.
#[derive(Debug, Clone)]
pub struct Sets {
    /// What to train on.
    pub train: Dataset,
    /// A separate test set (MNIST's `t10k` files, or `--test PATH`).
    pub test: Option<Dataset>,
}

/// Reads what `trainer fit --data PATH [--test PATH]` names: a directory of
/// MNIST's files gives its training set and, when its `t10k` images are
/// there, its test set; anything else its one set; `test` a separate test
/// set (of the same image size).
pub fn read_sets(path: &Path, test: Option<&Path>, opts: &ReadOptions) -> Result<Sets, DataError> {
    if Format::of(path)? == Format::MnistDir && test.is_none() {
        // MNIST's layout: the training files, and the t10k files as the
        // test set when they are there. Labels files are optional.
        let train = idx::read_pair(path, TRAIN_IMAGES, TRAIN_LABELS)?;
        let test = match find(path, TEST_IMAGES) {
            Ok(_) => Some(idx::read_pair(path, TEST_IMAGES, TEST_LABELS)?),
            Err(_) => None,
        };
        if let Some(t) = &test {
            check_same_size(t, &train)?;
        }
        return Ok(Sets { train, test });
    }
    let train = read_set(path, Part::Train, opts)?;
    let test = match test {
        Some(t) => {
            // The labels file belongs to the training set.
            let opts = ReadOptions {
                labels: None,
                ..opts.clone()
            };
            let set = read_set(t, Part::Test, &opts)?;
            check_same_size(&set, &train)?;
            Some(set)
        }
        None => None,
    };
    Ok(Sets { train, test })
}

/// Reads one set for a model of `shape` (`harness classify`, `trainer
/// eval`): the set as [`read_set`] reads it, its polarity settled by
/// `invert`, refused with a one-line error when its images are not the
/// model's size. Returns the set and the sentence saying what `invert` did.
pub fn read_for_model(
    path: &Path,
    part: Part,
    opts: &ReadOptions,
    invert: Invert,
    shape: engine::ImageShape,
) -> Result<(Dataset, String), DataError> {
    let (w, h) = (shape.width as usize, shape.height as usize);
    // Framing makes every image the model's size, each image's polarity
    // settled on its own.
    let opts = &ReadOptions {
        frame: opts.frame.map(|_| framing::Framing {
            width: w,
            height: h,
            invert,
        }),
        ..opts.clone()
    };
    let mut set = read_set(path, part, opts)?;
    if opts.frame.is_some() {
        let why = format!("settled image by image, then framed MNIST-style into {w}x{h}");
        return Ok((set, why));
    }
    if (set.images.cols, set.images.rows) != (w, h) {
        return Err(DataError::WrongSize {
            path: path.into(),
            width: set.images.cols,
            height: set.images.rows,
            expected_width: w,
            expected_height: h,
            why: "the model's image size".into(),
        });
    }
    let (inverted, why) = invert.decide(&set.images);
    if inverted {
        polarity::invert(&mut set.images);
    }
    Ok((set, why))
}

/// Refuses a test set whose images are not the training set's size.
fn check_same_size(test: &Dataset, train: &Dataset) -> Result<(), DataError> {
    if (test.images.rows, test.images.cols) != (train.images.rows, train.images.cols) {
        return Err(DataError::WrongSize {
            path: test.source.clone(),
            width: test.images.cols,
            height: test.images.rows,
            expected_width: train.images.cols,
            expected_height: train.images.rows,
            why: format!("the training images {}", train.source.display()),
        });
    }
    Ok(())
}

/// Parses `--size WxH` (e.g. `28x28`, `8x8`).
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WxH (e.g. 28x28), got {s:?}"))?;
    let w: usize = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    let h: usize = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    if w == 0 || h == 0 || w > 4096 || h > 4096 {
        return Err(format!("sides must be 1 to 4096, got {s:?}"));
    }
    Ok((w, h))
}

/// The side of a square of `pixels`, if it is one.
pub(crate) fn square_side(pixels: usize) -> Option<usize> {
    let s = (pixels as f64).sqrt().round() as usize;
    (s > 0 && s * s == pixels).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_squares_are_found() {
        assert_eq!(parse_size("28x28"), Ok((28, 28)));
        assert_eq!(parse_size("8X6"), Ok((8, 6)));
        assert!(parse_size("28").is_err());
        assert!(parse_size("0x3").is_err());
        assert!(parse_size("ax3").unwrap_err().contains("bad width"));
        assert_eq!(square_side(784), Some(28));
        assert_eq!(square_side(64), Some(8));
        assert_eq!(square_side(785), None);
        assert_eq!(square_side(0), None);
    }

    #[test]
    fn formats_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(Format::of(p).unwrap(), Format::ImageFolder);
        for (name, f) in [
            ("a.CSV", Format::Csv),
            ("a.npy", Format::Npy),
            ("a.png", Format::ImageFile),
            ("a.jpeg", Format::ImageFile),
            ("a-idx3-ubyte.gz", Format::Idx),
            ("images", Format::Idx),
        ] {
            std::fs::write(p.join(name), b"").unwrap();
            assert_eq!(Format::of(&p.join(name)).unwrap(), f, "{name}");
        }
        std::fs::write(p.join(TEST_IMAGES), b"").unwrap();
        assert_eq!(Format::of(p).unwrap(), Format::MnistDir);
        let e = Format::of(&p.join("nope")).unwrap_err();
        assert!(e.to_string().ends_with("nope: not found"), "{e}");
    }
}
