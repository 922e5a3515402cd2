//! Row-major points in host memory: the f32 view of images (scaled to
//! [0, 1]) or of any vectors, that kVAE trains on and FID scores.

use candle_core::{Device, Result, Tensor};

/// Row-major points in host memory (images scaled to [0, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// `n * dim` values.
    pub x: Vec<f32>,
    /// Number of points.
    pub n: usize,
    /// Values per point.
    pub dim: usize,
}

impl Points {
    /// Points from a flat vector of `n * dim` values.
    pub fn new(x: Vec<f32>, dim: usize) -> Self {
        assert!(
            dim > 0 && x.len().is_multiple_of(dim),
            "{} values are not rows of {dim}",
            x.len()
        );
        Points {
            n: x.len() / dim,
            x,
            dim,
        }
    }

    /// Greyscale images, bytes scaled by 1/255 (the engine's convention).
    pub fn from_images(images: &crate::data::Images) -> Self {
        Points::from_pixels(&images.pixels, images.pixels_per_image())
    }

    /// Images of `dim` 8-bit pixels one after another, scaled by 1/255.
    pub fn from_pixels(pixels: &[u8], dim: usize) -> Self {
        Points::new(pixels.iter().map(|&p| p as f32 / 255.0).collect(), dim)
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..start+len` as a `[len, dim]` tensor.
    pub fn slice(&self, start: usize, len: usize, device: &Device) -> Result<Tensor> {
        Tensor::from_slice(
            &self.x[start * self.dim..(start + len) * self.dim],
            (len, self.dim),
            device,
        )
    }

    /// A `[K, B, dim]` tensor whose row k holds the points `index[k]`.
    pub fn gather(&self, index: &[Vec<usize>], device: &Device) -> Result<Tensor> {
        let b = index.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(index.len() * b * self.dim);
        for rows in index {
            debug_assert_eq!(rows.len(), b);
            for &i in rows {
                out.extend_from_slice(self.row(i));
            }
        }
        Tensor::from_vec(out, (index.len(), b, self.dim), device)
    }
}
