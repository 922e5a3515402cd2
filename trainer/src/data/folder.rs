//! A folder of image files (PNG, JPEG, BMP, PGM/PPM), searched recursively,
//! or one image file. Paths are sorted so that the order is stable; colour
//! becomes grey by luminance (ITU-R BT.709, the `image` crate's), and a
//! transparent pixel shows the paper under it (white). Files are decoded in
//! parallel (rayon). When every image sits in a sub-folder of the root, the
//! sub-folder's name is its label: names that are all numbers 0–255 are
//! those numbers, other names are numbered in sorted order. Hidden entries
//! (names starting with `.`) are skipped; any other file that is not an
//! image is an error, so that nothing is left out silently.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::framing::Framing;
use super::{extension, read_nonempty, DataError, Dataset, Images, Labels, IMAGE_EXTENSIONS};

/// Every image file below `root`, sorted by path; an error for a file that
/// is not an image.
fn image_files(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| DataError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DataError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if IMAGE_EXTENSIONS.contains(&extension(&path).as_str()) {
                files.push(path);
            } else {
                return Err(DataError::invalid(
                    &path,
                    format!(
                        "not an image file (a folder of images may hold only .{} files)",
                        IMAGE_EXTENSIONS.join(", .")
                    ),
                ));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One decoded image: grey bytes, width, height.
type Grey = (Vec<u8>, usize, usize);

/// Decodes one image file to grey bytes.
pub fn decode(path: &Path) -> Result<Grey, DataError> {
    let bytes = read_nonempty(path)?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| DataError::invalid(path, format!("not a readable image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grey = if img.color().has_alpha() {
        // Composite over white paper, then take the luminance.
        let rgba = img.to_rgba32f();
        let luma = image::DynamicImage::ImageRgba32F(rgba.clone()).to_luma32f();
        luma.pixels()
            .zip(rgba.pixels())
            .map(|(l, p)| {
                let a = p.0[3];
                ((l.0[0] * a + (1.0 - a)) * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    } else {
        img.to_luma8().into_raw()
    };
    Ok((grey, w, h))
}

/// The label of each file from its first folder under `root`, when every
/// file sits in one; `None` otherwise.
fn folder_labels(root: &Path, files: &[PathBuf]) -> Option<Labels> {
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(root).ok()?;
            let mut parts = rel.components();
            let first = parts.next()?;
            parts.next()?; // the file itself must come after a folder
            Some(first.as_os_str().to_string_lossy().into_owned())
        })
        .collect::<Option<_>>()?;
    let mut classes: Vec<String> = names.clone();
    classes.sort();
    classes.dedup();
    let numbers: Option<Vec<u8>> = names.iter().map(|n| n.parse::<u8>().ok()).collect();
    Some(match numbers {
        Some(values) => Labels::numbers(values),
        None => {
            if classes.len() > 256 {
                return None;
            }
            let values = names
                .iter()
                .map(|n| classes.binary_search(n).unwrap_or(0) as u8)
                .collect();
            Labels {
                values,
                names: Some(classes),
            }
        }
    })
}

/// Reads every image below `root` (see the module's rules); with `frame`,
/// every image (of any size) framed MNIST-style into the framing's size.
pub fn read_folder(root: &Path, frame: Option<Framing>) -> Result<Dataset, DataError> {
    let files = image_files(root)?;
    if files.is_empty() {
        return Err(DataError::Empty {
            path: root.into(),
            hint: format!(
                " found (looked for .{} files, recursively)",
                IMAGE_EXTENSIONS.join(", .")
            ),
        });
    }
    // The first image sets the size; the rest are decoded in parallel
    // straight into their place in one buffer (peak memory: the images
    // once, plus one image per thread).
    let (first, first_cols, first_rows) = decode(&files[0])?;
    let (cols, rows) = match frame {
        Some(f) => (f.width, f.height),
        None => (first_cols, first_rows),
    };
    let size = cols * rows;
    let mut pixels = vec![0u8; files.len() * size];
    match frame {
        Some(f) => f.frame(
            &first,
            first_cols,
            first_rows,
            &mut pixels[..size],
            &files[0],
            0,
        )?,
        None => pixels[..size].copy_from_slice(&first),
    }
    // Every failure, by index, so that the first in path order is reported.
    let failures: Vec<(usize, DataError)> = pixels
        .par_chunks_mut(size.max(1))
        .zip(files.par_iter())
        .enumerate()
        .skip(1)
        .filter_map(|(i, (out, path))| {
            let result = decode(path).and_then(|(grey, w, h)| {
                if let Some(f) = frame {
                    return f.frame(&grey, w, h, out, path, i);
                }
                if (w, h) != (cols, rows) {
                    return Err(DataError::MixedSizes {
                        path: path.clone(),
                        width: w,
                        height: h,
                        first: files[0].clone(),
                        first_width: cols,
                        first_height: rows,
                    });
                }
                out.copy_from_slice(&grey);
                Ok(())
            });
            result.err().map(|e| (i, e))
        })
        .collect();
    if let Some((_, e)) = failures.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    Ok(Dataset {
        images: Images {
            n: files.len(),
            rows,
            cols,
            pixels,
        },
        labels: folder_labels(root, &files),
        source: root.into(),
    })
}

/// Reads one image file as a set of one image, unlabelled.
pub fn read_file(path: &Path) -> Result<Dataset, DataError> {
    let (pixels, cols, rows) = decode(path)?;
    Ok(Dataset {
        images: Images {
            n: 1,
            rows,
            cols,
            pixels,
        },
        labels: None,
        source: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_a_labelled_folder_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        png(&r.join("7/b.png"), 3, 2, |x, _| x as u8);
        png(&r.join("7/a.png"), 3, 2, |_, y| 10 + y as u8);
        png(&r.join("1/z.png"), 3, 2, |_, _| 200);
        std::fs::write(r.join("1/.DS_Store"), b"junk").unwrap();
        let set = read_folder(r, None).unwrap();
        assert_eq!((set.images.n, set.images.cols, set.images.rows), (3, 3, 2));
        assert_eq!(set.labels.unwrap().values, vec![1, 7, 7]);
        assert_eq!(set.images.image(0), &[200; 6]);
        assert_eq!(set.images.image(1), &[10, 10, 10, 11, 11, 11]);
        assert_eq!(set.images.image(2), &[0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn named_folders_are_numbered_and_a_flat_folder_is_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        png(&r.join("dog/a.png"), 2, 2, |_, _| 0);
        png(&r.join("cat/b.png"), 2, 2, |_, _| 0);
        let l = read_folder(r, None).unwrap().labels.unwrap();
        assert_eq!(l.values, vec![0, 1]);
        assert_eq!(l.name(1), "dog");
        png(&r.join("loose.png"), 2, 2, |_, _| 0);
        assert_eq!(read_folder(r, None).unwrap().labels, None);
    }

    #[test]
    fn colour_and_alpha_become_grey_on_white() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        image::RgbaImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                image::Rgba([0, 0, 0, 0]) // transparent: paper
            } else {
                image::Rgba([0, 0, 0, 255]) // black ink
            }
        })
        .save(&p)
        .unwrap();
        let set = read_file(&p).unwrap();
        assert_eq!(set.images.pixels, vec![255, 0]);
        let p = dir.path().join("c.bmp");
        image::RgbImage::from_fn(1, 1, |_, _| image::Rgb([255, 255, 255]))
            .save(&p)
            .unwrap();
        assert_eq!(read_file(&p).unwrap().images.pixels, vec![255]);
    }

    #[test]
    fn bad_folders_are_one_line_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(e.contains("no images found"), "{e}");
        png(&r.join("a.png"), 2, 2, |_, _| 0);
        png(&r.join("b.png"), 3, 2, |_, _| 0);
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(
            e.contains("b.png: image is 3x2, but") && e.contains("a.png is 2x2"),
            "{e}"
        );
        // Framed, images of any sizes make one set.
        let framing = Framing {
            width: 4,
            height: 4,
            invert: crate::data::Invert::No,
        };
        let set = read_folder(r, Some(framing)).unwrap();
        assert_eq!((set.images.n, set.images.cols, set.images.rows), (2, 4, 4));
        std::fs::remove_file(r.join("b.png")).unwrap();
        std::fs::write(r.join("notes.txt"), b"hello").unwrap();
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(e.contains("notes.txt: not an image file"), "{e}");
        std::fs::remove_file(r.join("notes.txt")).unwrap();
        std::fs::write(r.join("zero.png"), b"").unwrap();
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(e.contains("zero.png: empty file (0 bytes)"), "{e}");
        let full = std::fs::read(r.join("a.png")).unwrap();
        std::fs::write(r.join("zero.png"), &full[..full.len() / 2]).unwrap();
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(e.contains("zero.png: not a readable image"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
