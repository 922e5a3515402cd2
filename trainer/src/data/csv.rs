//! CSV: one image per row, pixels 0–255 as integers, row-major.
//!
//! - A first row whose cells are mostly not numbers is a header. With a
//!   header, a first column named `label` (any case) holds the labels
//!   (Kaggle's digit-recognizer `train.csv`); `test.csv` has none.
//! - Without a header, a row of `W·H + 1` cells has its label first, one of
//!   `W·H` none, where `--size WxH` gives the size; without `--size`, a row
//!   of a square number of cells is a square image, and one cell more than
//!   a square is a label and a square image.
//!
//! Every row must have as many cells as the first; a cell that is not an
//! integer 0–255 is an error naming its row (the line in the file) and
//! column.

use std::path::Path;

use super::{square_side, DataError, Dataset, Images, Labels};

/// Parses a cell as an integer 0–255 (surrounding spaces allowed).
fn byte(cell: &[u8]) -> Result<u8, String> {
    let text = std::str::from_utf8(cell).unwrap_or("").trim();
    if text.is_empty() {
        return Err("empty cell".into());
    }
    match text.parse::<u32>() {
        Ok(v) if v <= 255 => Ok(v as u8),
        Ok(v) => Err(format!("value {v} is over 255")),
        Err(_) => match text.parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && (0.0..=255.0).contains(&v) => Ok(v as u8),
            Ok(v) if v > 255.0 => Err(format!("value {text} is over 255")),
            _ => Err(format!("{text:?} is not an integer 0-255")),
        },
    }
}

/// How a row's cells divide into a label and the image.
fn layout(
    path: &Path,
    cells: usize,
    header_label: Option<bool>,
    size: Option<(usize, usize)>,
) -> Result<(bool, usize, usize), DataError> {
    let with_label = match (header_label, size) {
        (Some(l), _) => l,
        (None, Some((w, h))) if cells == w * h => false,
        (None, Some((w, h))) if cells == w * h + 1 => true,
        (None, Some((w, h))) => {
            return Err(DataError::invalid(
                path,
                format!(
                    "rows have {cells} cells; --size {w}x{h} needs {} (or {} with a label first)",
                    w * h,
                    w * h + 1
                ),
            ))
        }
        (None, None) if square_side(cells).is_some() => false,
        (None, None) if cells > 1 && square_side(cells - 1).is_some() => true,
        (None, None) => {
            return Err(DataError::invalid(
                path,
                format!(
                    "rows have {cells} cells, not a square image (with or without a label first): give --size WxH"
                ),
            ))
        }
    };
    let pixels = cells - usize::from(with_label);
    let (w, h) = match size {
        Some(s) => s,
        None => {
            let side = square_side(pixels).ok_or_else(|| {
                DataError::invalid(
                    path,
                    format!("rows have {pixels} pixels, not a square image: give --size WxH"),
                )
            })?;
            (side, side)
        }
    };
    if w * h != pixels {
        return Err(DataError::invalid(
            path,
            format!("rows have {pixels} pixels, --size {w}x{h} needs {}", w * h),
        ));
    }
    Ok((with_label, w, h))
}

/// Reads a CSV of images (see the module's rules).
pub fn read(path: &Path, size: Option<(usize, usize)>) -> Result<Dataset, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let mut record = ::csv::ByteRecord::new();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut shape: Option<(bool, usize, usize, usize)> = None; // label, w, h, cells
    let mut header_label: Option<bool> = None;
    let mut first = true;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let row = e.position().map_or(0, |p| p.line() as usize);
            DataError::Csv {
                path: path.into(),
                row,
                column: 1,
                detail: format!("not valid CSV: {e}"),
            }
        })?;
        if !more {
            break;
        }
        let row = record.position().map_or(0, |p| p.line() as usize);
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        if first {
            first = false;
            // A header names its columns: most of its cells are not
            // numbers (a data row with a typo in one cell is still data,
            // and its error names that cell).
            let words = record
                .iter()
                .filter(|c| {
                    let t = std::str::from_utf8(c).unwrap_or("x").trim();
                    t.parse::<f64>().is_err()
                })
                .count();
            let is_header = 2 * words > record.len();
            if is_header {
                let name = std::str::from_utf8(&record[0]).unwrap_or("").trim();
                let label = name.eq_ignore_ascii_case("label");
                header_label = Some(label);
                let (l, w, h) = layout(path, record.len(), header_label, size)?;
                shape = Some((l, w, h, record.len()));
                continue;
            }
        }
        let (with_label, w, h, cells) = match shape {
            Some(s) => s,
            None => {
                let (l, w, h) = layout(path, record.len(), header_label, size)?;
                let s = (l, w, h, record.len());
                pixels.reserve(w * h * 1024);
                shape = Some(s);
                s
            }
        };
        if record.len() != cells {
            return Err(DataError::Csv {
                path: path.into(),
                row,
                column: record.len().min(cells) + 1,
                detail: format!("{} cells, the first row has {cells}", record.len()),
            });
        }
        debug_assert_eq!(cells, w * h + usize::from(with_label));
        for (column, cell) in record.iter().enumerate() {
            let v = byte(cell).map_err(|detail| DataError::Csv {
                path: path.into(),
                row,
                column: column + 1,
                detail,
            })?;
            if with_label && column == 0 {
                labels.push(v);
            } else {
                pixels.push(v);
            }
        }
    }
    let Some((with_label, w, h, _)) = shape else {
        return Err(DataError::Empty {
            path: path.into(),
            hint: " (no rows)".into(),
        });
    };
    let n = pixels.len() / (w * h);
    if n == 0 {
        return Err(DataError::Empty {
            path: path.into(),
            hint: " (a header and no rows)".into(),
        });
    }
    Ok(Dataset {
        images: Images {
            n,
            rows: h,
            cols: w,
            pixels,
        },
        labels: with_label.then(|| Labels::numbers(labels)),
        source: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, size: Option<(usize, usize)>) -> Result<Dataset, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, text).unwrap();
        read(&p, size)
    }

    #[test]
    fn kaggle_layouts_and_headerless_files() {
        let s = csv(
            "label,pixel0,pixel1,pixel2,pixel3\n7,0,1,2,255\n3,4,5,6,7\n",
            None,
        )
        .unwrap();
        assert_eq!((s.images.n, s.images.cols, s.images.rows), (2, 2, 2));
        assert_eq!(s.labels.unwrap().values, vec![7, 3]);
        assert_eq!(s.images.pixels, vec![0, 1, 2, 255, 4, 5, 6, 7]);
        let s = csv("pixel0,pixel1,pixel2,pixel3\n0,1,2,3\n", None).unwrap();
        assert_eq!((s.images.n, s.labels), (1, None));
        // Headerless: 5 cells = label + 2x2; 4 cells = 2x2.
        let s = csv("9,1,2,3,4\r\n8,5,6,7,8\r\n", None).unwrap();
        assert_eq!(s.labels.unwrap().values, vec![9, 8]);
        let s = csv("1,2,3,4\n\n5,6,7,8\n", None).unwrap();
        assert_eq!((s.images.n, s.labels), (2, None));
        // --size decides what a square count cannot: 3x1 and 3x1 + label.
        let s = csv("1,2,3\n", Some((3, 1))).unwrap();
        assert_eq!((s.images.cols, s.images.rows), (3, 1));
        let s = csv("1,2,3,4\n", Some((3, 1))).unwrap();
        assert_eq!(s.labels.unwrap().values, vec![1]);
    }

    #[test]
    fn bad_cells_name_their_row_and_column() {
        let e = csv("label,a,b,c,d\n1,0,0,0,0\n2,0,0,0\n", None).unwrap_err();
        assert_eq!(
            e.to_string().split_once(": ").unwrap().1,
            "row 3, column 5: 4 cells, the first row has 5"
        );
        let e = csv("1,2,3,4\n5,x,7,8\n", None).unwrap_err().to_string();
        assert!(
            e.ends_with("row 2, column 2: \"x\" is not an integer 0-255"),
            "{e}"
        );
        let e = csv("1,2,3,4\n5,6,7,300\n", None).unwrap_err().to_string();
        assert!(e.ends_with("row 2, column 4: value 300 is over 255"), "{e}");
        let e = csv("1,2,3\n", None).unwrap_err().to_string();
        assert!(e.contains("give --size WxH"), "{e}");
        let e = csv("", None).unwrap_err().to_string();
        assert!(e.ends_with("no images (no rows)"), "{e}");
        let e = csv("label,a,b,c,d\n", None).unwrap_err().to_string();
        assert!(e.contains("a header and no rows"), "{e}");
        let e = csv("1,2,3\n", Some((2, 2))).unwrap_err().to_string();
        assert!(e.contains("--size 2x2 needs 4"), "{e}");
    }
}
