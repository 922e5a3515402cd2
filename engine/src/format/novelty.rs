//! The novelty section: extension [`NOVELTY_TAG`] of a version-3
//! description, what the engine needs to say how unlike its training
//! images an input is (`FORMAT.md`, *Novelty*).
//!
//! A section has two parts, both fitted by the trainer on training images
//! only:
//!
//! - per cluster, a diagonal Gaussian over the gate's last hidden layer,
//!   stored as its means and a weight per unit, `w = 1 / (2 σ² T_c)`, so
//!   that the weighted squared distance `Σ w (h − μ)²` of an image in
//!   cluster `c` is 1 exactly at that cluster's threshold `T_c`;
//! - a threshold on the gate's doubt, `1 − max p`.
//!
//! The Gaussians are stored in the file's element type: `f32` means and
//! weights in an f16 file; in an int8 file, means as codes of the hidden
//! layer and weights as `u16` with a scale per cluster, so that the distance
//! is summed in integers (`forward::novelty`).

use serde::{Deserialize, Serialize};

use super::desc::{ElementType, TensorRef};
use super::repr::checked_tensor;
use crate::Error;

/// Tag of the novelty section in a version-3 description's extension list.
pub const NOVELTY_TAG: u16 = 1;

/// The novelty section as encoded (postcard), tensors referring to the
/// data section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoveltyDesc {
    /// Width of the gate's last hidden layer: its last layer's inputs.
    pub units: u32,
    /// The gate's doubt, `1 − max p`, at the threshold; in `(0, 1]`.
    pub doubt_threshold: f32,
    /// The per-cluster Gaussians, in the file's element type.
    pub gaussians: GaussiansDesc,
}

/// The per-cluster Gaussians' tensors: `K · units` values each, cluster 0's
/// units first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GaussiansDesc {
    /// In an f16 file.
    F32 {
        /// `f32` LE means, finite.
        means: TensorRef,
        /// `f32` LE weights `1 / (2 σ² T_c)`, finite and not negative.
        weights: TensorRef,
    },
    /// In an int8 file.
    Int8 {
        /// `i16` LE means in codes of the hidden layer, within its codes'
        /// range (`0..=255` after a ReLU, `-128..=127` otherwise).
        means: TensorRef,
        /// `u16` LE weights in units of the cluster's scale.
        weights: TensorRef,
        /// `f32` LE per cluster: the real weight of one weight unit times
        /// one squared code, finite and not negative.
        scales: TensorRef,
    },
}

/// A validated novelty section, tensors resolved to byte slices of the
/// file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoveltySection<'a> {
    /// Width of the gate's last hidden layer.
    pub units: usize,
    /// The doubt `1 − max p` at the threshold.
    pub doubt_threshold: f32,
    /// The per-cluster Gaussians.
    pub gaussians: Gaussians<'a>,
}

/// The per-cluster Gaussians of a [`NoveltySection`], as bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gaussians<'a> {
    /// `f32` means and weights (f16 files).
    F32 {
        /// `K · units` `f32` LE.
        means: &'a [u8],
        /// `K · units` `f32` LE.
        weights: &'a [u8],
    },
    /// Integer means and weights (int8 files).
    Int8 {
        /// `K · units` `i16` LE.
        means: &'a [u8],
        /// `K · units` `u16` LE.
        weights: &'a [u8],
        /// `K` `f32` LE.
        scales: &'a [u8],
    },
}

impl core::fmt::Display for NoveltySection<'_> {
    /// The section in one line, as `harness inspect` and the page print it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let encoding = match self.gaussians {
            Gaussians::F32 { .. } => "f32 means and weights",
            Gaussians::Int8 { .. } => "integer means and weights",
        };
        write!(
            f,
            "per cluster a Gaussian over the gate's last hidden layer ({} units, {encoding}), doubt threshold {:.4} (engine/FORMAT.md, Novelty)",
            self.units, self.doubt_threshold
        )
    }
}

impl<'a> Gaussians<'a> {
    /// Cluster `c`'s means and weights (`units` values each) and, for an
    /// int8 file, its scale; `None` when `c` is out of range.
    pub fn cluster(&self, c: usize, units: usize) -> Option<(&'a [u8], &'a [u8], f32)> {
        let part = |bytes: &'a [u8], size: usize| {
            let start = c.checked_mul(units)?.checked_mul(size)?;
            bytes.get(start..start.checked_add(units.checked_mul(size)?)?)
        };
        match *self {
            Gaussians::F32 { means, weights } => Some((part(means, 4)?, part(weights, 4)?, 1.0)),
            Gaussians::Int8 {
                means,
                weights,
                scales,
            } => {
                let scale = scales.get(c.checked_mul(4)?..c.checked_mul(4)?.checked_add(4)?)?;
                let scale = f32::from_le_bytes([scale[0], scale[1], scale[2], scale[3]]);
                Some((part(means, 2)?, part(weights, 2)?, scale))
            }
        }
    }
}

/// What a section whose values break the rules above is.
const VALUES: &str = "novelty values out of range (means finite, or in the hidden layer's codes; weights and scales finite, not negative)";

/// Whether `ok` holds for every `f32` LE value of `bytes` (a plain loop and
/// a function pointer: one copy of the code for every check).
fn all_f32(bytes: &[u8], ok: fn(f32) -> bool) -> bool {
    let mut all = true;
    for b in bytes.chunks_exact(4) {
        all &= ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    all
}

fn finite_not_negative(v: f32) -> bool {
    v.is_finite() && v >= 0.0
}

/// What the section is checked against: the model around it.
pub(crate) struct Context {
    /// The model's element type.
    pub element: ElementType,
    /// Clusters K.
    pub clusters: usize,
    /// The gate's last layer's inputs, if the gate has a hidden layer.
    pub hidden: Option<usize>,
    /// The range of the hidden layer's codes (int8 files).
    pub codes: (i32, i32),
}

impl NoveltyDesc {
    /// Checks the section against the model and the data section and
    /// resolves its tensors; every value the distance reads is checked
    /// here, once.
    pub(crate) fn resolve<'a>(
        &self,
        data: &'a [u8],
        model: &Context,
    ) -> Result<NoveltySection<'a>, Error> {
        let units = self.units as usize;
        match model.hidden {
            None => {
                return Err(Error::InvalidModel(
                    "novelty section on a gate of one layer",
                ))
            }
            Some(h) if h != units => {
                return Err(Error::InvalidModel(
                    "novelty units differ from the gate's last hidden layer",
                ))
            }
            Some(_) => {}
        }
        if !(self.doubt_threshold > 0.0 && self.doubt_threshold <= 1.0) {
            return Err(Error::InvalidModel(
                "novelty doubt threshold outside (0, 1]",
            ));
        }
        let count = units
            .checked_mul(model.clusters)
            .ok_or(Error::InvalidModel("novelty section size overflows"))?;
        let what = "novelty tensor length does not match its shape";
        let gaussians = match (self.gaussians, model.element) {
            (GaussiansDesc::F32 { means, weights }, ElementType::F16) => {
                let means = checked_tensor(data, means, count, 4, what)?;
                let weights = checked_tensor(data, weights, count, 4, what)?;
                if !all_f32(means, f32::is_finite) || !all_f32(weights, finite_not_negative) {
                    return Err(Error::InvalidModel(VALUES));
                }
                Gaussians::F32 { means, weights }
            }
            (
                GaussiansDesc::Int8 {
                    means,
                    weights,
                    scales,
                },
                ElementType::Int8,
            ) => {
                let means = checked_tensor(data, means, count, 2, what)?;
                let weights = checked_tensor(data, weights, count, 2, what)?;
                let scales = checked_tensor(data, scales, model.clusters, 4, what)?;
                // The integer distance's bound rests on this (forward::novelty).
                let (low, high) = model.codes;
                let mut codes = true;
                for b in means.chunks_exact(2) {
                    let m = i16::from_le_bytes([b[0], b[1]]) as i32;
                    codes &= m >= low && m <= high;
                }
                if !codes || !all_f32(scales, finite_not_negative) {
                    return Err(Error::InvalidModel(VALUES));
                }
                Gaussians::Int8 {
                    means,
                    weights,
                    scales,
                }
            }
            _ => {
                return Err(Error::InvalidModel(
                    "novelty section of another element type than its model",
                ))
            }
        };
        Ok(NoveltySection {
            units,
            doubt_threshold: self.doubt_threshold,
            gaussians,
        })
    }
}
