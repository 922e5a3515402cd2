//! NumPy `.npy` arrays (read with the `npyz` crate): images as `uint8`
//! (0–255) or `float32`/`float64` (0–1, rounded to the nearest of 256
//! levels), shaped N×H×W, or N×(H·W) with `--size WxH` (a square H·W needs
//! none); labels as a second, one-dimensional array of integers 0–255.
//! C order only (what `numpy.save` writes unless told otherwise).

use std::path::Path;

use super::{read_nonempty, square_side, DataError, Dataset, Images};

fn open(path: &Path) -> Result<npyz::NpyFile<std::io::Cursor<Vec<u8>>>, DataError> {
    let bytes = read_nonempty(path)?;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(bytes))
        .map_err(|e| DataError::invalid(path, format!("not a NumPy .npy file: {e}")))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(DataError::invalid(
            path,
            "Fortran-ordered array: save it with numpy.ascontiguousarray first",
        ));
    }
    Ok(npy)
}

/// The array's dtype as NumPy writes it (`|u1`, `<f4`…; npyz quotes it).
fn descr(npy: &npyz::NpyFile<std::io::Cursor<Vec<u8>>>) -> String {
    npy.dtype().descr().trim_matches(['\'', '"']).to_string()
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::invalid(path, format!("cannot read the array: {e}"))
}

/// Reads an images array (see the module's rules).
pub fn read(path: &Path, size: Option<(usize, usize)>) -> Result<Dataset, DataError> {
    let npy = open(path)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let (n, rows, cols) = match (shape.as_slice(), size) {
        (&[n, h, w], None) => (n, h, w),
        (&[n, h, w], Some((sw, sh))) if (sw, sh) == (w, h) => (n, h, w),
        (&[_, h, w], Some((sw, sh))) => {
            return Err(DataError::invalid(
                path,
                format!("the array holds {w}x{h} images, --size says {sw}x{sh}"),
            ))
        }
        (&[n, d], Some((w, h))) if w * h == d => (n, h, w),
        (&[_, d], Some((w, h))) => {
            return Err(DataError::invalid(
                path,
                format!("rows of {d} values do not make --size {w}x{h} images"),
            ))
        }
        (&[n, d], None) => match square_side(d) {
            Some(s) => (n, s, s),
            None => {
                return Err(DataError::invalid(
                    path,
                    format!("rows of {d} values are not square images: give --size WxH"),
                ))
            }
        },
        (other, _) => {
            return Err(DataError::invalid(
                path,
                format!(
                    "array of {} dimensions {other:?}: expected N×H×W or N×(H·W)",
                    other.len()
                ),
            ))
        }
    };
    let dtype = descr(&npy);
    let pixels: Vec<u8> = match dtype.as_str() {
        "|u1" | "<u1" | ">u1" => npy.into_vec::<u8>().map_err(read_err(path))?,
        "<f4" | ">f4" => unit_to_bytes(path, npy.into_vec::<f32>().map_err(read_err(path))?)?,
        "<f8" | ">f8" => unit_to_bytes(path, npy.into_vec::<f64>().map_err(read_err(path))?)?,
        other => {
            return Err(DataError::invalid(
                path,
                format!(
                "dtype {other} is not supported: expected uint8 (0-255), float32 or float64 (0-1)"
            ),
            ))
        }
    };
    if pixels.len() != n * rows * cols {
        return Err(DataError::invalid(
            path,
            format!(
                "holds {} values, its shape announces {}",
                pixels.len(),
                n * rows * cols
            ),
        ));
    }
    Ok(Dataset {
        images: Images {
            n,
            rows,
            cols,
            pixels,
        },
        labels: None,
        source: path.into(),
    })
}

/// Intensities in [0, 1] as bytes, refusing any other value.
fn unit_to_bytes<F: Into<f64> + Copy>(path: &Path, values: Vec<F>) -> Result<Vec<u8>, DataError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let v: f64 = v.into();
            if (0.0..=1.0).contains(&v) {
                Ok((v * 255.0).round() as u8)
            } else {
                Err(DataError::invalid(
                    path,
                    format!("value {v} at flat index {i} is outside 0-1 (float images hold intensities 0-1)"),
                ))
            }
        })
        .collect()
}

/// Reads a labels array: one dimension, integers 0–255.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let npy = open(path)?;
    if npy.shape().len() != 1 {
        return Err(DataError::invalid(
            path,
            format!(
                "labels must be a 1-dimensional array, this one has shape {:?}",
                npy.shape()
            ),
        ));
    }
    let dtype = descr(&npy);
    let wide: Vec<i64> = match dtype.trim_start_matches(['<', '>', '|']) {
        "u1" => npy
            .into_vec::<u8>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i1" => npy
            .into_vec::<i8>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "u2" => npy
            .into_vec::<u16>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i2" => npy
            .into_vec::<i16>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "u4" => npy
            .into_vec::<u32>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i4" => npy
            .into_vec::<i32>()
            .map_err(read_err(path))?
            .into_iter()
            .map(i64::from)
            .collect(),
        "i8" => npy.into_vec::<i64>().map_err(read_err(path))?,
        "u8" => npy
            .into_vec::<u64>()
            .map_err(read_err(path))?
            .into_iter()
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
            .collect(),
        _ => {
            return Err(DataError::invalid(
                path,
                format!("labels of dtype {dtype}: expected an integer array"),
            ))
        }
    };
    wide.iter()
        .enumerate()
        .map(|(i, &v)| {
            u8::try_from(v).map_err(|_| {
                DataError::invalid(path, format!("label {v} at index {i} is outside 0-255"))
            })
        })
        .collect()
}

/// Writes an array as `.npy` (tests and the example scripts' fixtures).
pub fn write<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[u64],
    values: &[T],
) -> std::io::Result<()> {
    use npyz::WriterBuilder as _;
    let mut out = Vec::new();
    {
        let mut w = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()?;
        w.extend(values.iter().copied())?;
        w.finish()?;
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bytes_floats_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        write::<u8>(&p, &[2, 2, 3], &(0..12).collect::<Vec<_>>()).unwrap();
        let s = read(&p, None).unwrap();
        assert_eq!((s.images.n, s.images.rows, s.images.cols), (2, 2, 3));
        assert_eq!(s.images.image(1), &[6, 7, 8, 9, 10, 11]);
        write::<f32>(&p, &[1, 4], &[0.0, 0.5, 1.0, 0.25]).unwrap();
        let s = read(&p, None).unwrap();
        assert_eq!((s.images.rows, s.images.cols), (2, 2));
        assert_eq!(s.images.pixels, vec![0, 128, 255, 64]);
        write::<f64>(&p, &[1, 3], &[0.0, 0.5, 1.0]).unwrap();
        let s = read(&p, Some((3, 1))).unwrap();
        assert_eq!(s.images.pixels, vec![0, 128, 255]);
        let l = dir.path().join("y.npy");
        write::<i64>(&l, &[3], &[0, 9, 255]).unwrap();
        assert_eq!(read_labels(&l).unwrap(), vec![0, 9, 255]);
    }

    #[test]
    fn bad_arrays_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        write::<i32>(&p, &[1, 2, 2], &[0, 1, 2, 3]).unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("dtype <i4 is not supported"), "{e}");
        write::<u8>(&p, &[4], &[0, 1, 2, 3]).unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("array of 1 dimensions"), "{e}");
        write::<u8>(&p, &[1, 3], &[0, 1, 2]).unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("give --size WxH"), "{e}");
        write::<f32>(&p, &[1, 1], &[1.5]).unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("value 1.5 at flat index 0 is outside 0-1"),
            "{e}"
        );
        write::<i64>(&p, &[2], &[1, 300]).unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("label 300 at index 1"), "{e}");
        std::fs::write(&p, b"").unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.ends_with("empty file (0 bytes)"), "{e}");
        std::fs::write(&p, b"not numpy at all").unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("not a NumPy .npy file"), "{e}");
        assert!(!e.contains('\n'));
    }
}
