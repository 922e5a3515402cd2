//! The novelty section of a file being written, from f32 values
//! (`FORMAT.md`, *Novelty*): kept as `f32` in an f16 file, turned into
//! integer codes and weights in an int8 one.

use std::vec::Vec;

use super::{le_bytes, Data};
use crate::format::{
    Extension, Gaussians, GaussiansDesc, LayerDesc, LayerWeights, Network, NoveltyDesc,
    NoveltySection, Weights, NOVELTY_TAG,
};
use crate::{Error, Novelty};

/// The novelty score's parameters in f32, fitted by the trainer on
/// training images: per cluster a diagonal Gaussian over the gate's last
/// hidden layer, folded with the cluster's threshold into one weight per
/// unit, and the threshold of the gate's doubt.
#[derive(Debug, Clone, PartialEq)]
pub struct NoveltySpec {
    /// Per cluster, the mean of each unit of the gate's last hidden layer.
    pub means: Vec<Vec<f32>>,
    /// Per cluster, each unit's weight in the distance,
    /// `1 / (2 σ² T_c)`: distance 1 is the cluster's threshold `T_c`.
    pub weights: Vec<Vec<f32>>,
    /// The gate's doubt `1 − max p` at its threshold, in `(0, 1]`.
    pub doubt_threshold: f32,
}

/// Largest weight code of an int8 file: the cluster's largest weight.
const WEIGHT_CODES: f32 = u16::MAX as f32;

impl NoveltySpec {
    /// The spec of per-cluster diagonal Gaussians (`means`, `variances`,
    /// `K × D` each), each cluster's threshold on `½ Σ (h − μ)² / σ²`, and
    /// the threshold on the gate's doubt.
    ///
    /// ```
    /// # use engine::writer::NoveltySpec;
    /// let spec = NoveltySpec::from_gaussians(&[vec![1.0, 0.0]], &[vec![0.5, 2.0]], &[4.0], 0.3);
    /// // ½ ((3 − 1)² / 0.5 + (2 − 0)² / 2) = 5, over the threshold 4.
    /// assert_eq!(spec.distance(0, &[3.0, 2.0]), 1.25);
    /// ```
    pub fn from_gaussians(
        means: &[Vec<f32>],
        variances: &[Vec<f32>],
        thresholds: &[f32],
        doubt_threshold: f32,
    ) -> Self {
        let weights = variances
            .iter()
            .zip(thresholds)
            .map(|(v, &t)| v.iter().map(|&v| 1.0 / (2.0 * v * t)).collect())
            .collect();
        NoveltySpec {
            means: means.to_vec(),
            weights,
            doubt_threshold,
        }
    }

    /// Cluster `c`'s distance of the hidden layer `hidden`, in the order
    /// and `f32` arithmetic of an f16 file's engine (`Σ (d · d) · w`, unit
    /// 0 first): the reference an engine's f16 score equals.
    pub fn distance(&self, c: usize, hidden: &[f32]) -> f32 {
        let (Some(means), Some(weights)) = (self.means.get(c), self.weights.get(c)) else {
            return f32::NAN;
        };
        let mut sum = 0.0f32;
        for ((&h, &m), &w) in hidden.iter().zip(means).zip(weights) {
            let d = h - m;
            sum += (d * d) * w;
        }
        sum
    }

    /// The novelty of an input whose gate gave `probabilities` and the
    /// hidden layer `hidden`: what an f16 file's engine answers.
    pub fn novelty(&self, probabilities: &[f32], hidden: &[f32]) -> Novelty {
        let cluster = crate::kernels::argmax(probabilities);
        let doubt = 1.0 - probabilities.get(cluster).copied().unwrap_or(0.0);
        Novelty::new(self.distance(cluster, hidden), doubt, self.doubt_threshold)
    }

    /// Checks the shapes against a model of `clusters` clusters whose
    /// gate's last hidden layer has `units` units.
    fn check(&self, clusters: usize, units: usize) -> Result<(), Error> {
        let shaped = |v: &[Vec<f32>]| v.len() == clusters && v.iter().all(|c| c.len() == units);
        if !shaped(&self.means) || !shaped(&self.weights) {
            return Err(Error::Unrepresentable(
                "novelty Gaussians do not match the gate's clusters and hidden units",
            ));
        }
        Ok(())
    }

    /// The section of an f16 file: the values as `f32`.
    fn f32_section(&self, gate: &[LayerDesc], data: &mut Data) -> Result<NoveltyDesc, Error> {
        let units = hidden_units(gate)?;
        self.check(self.means.len(), units)?;
        let flat = |v: &[Vec<f32>]| le_bytes(&v.concat(), f32::to_le_bytes);
        Ok(NoveltyDesc {
            units: units as u32,
            doubt_threshold: self.doubt_threshold,
            gaussians: GaussiansDesc::F32 {
                means: data.push(&flat(&self.means))?,
                weights: data.push(&flat(&self.weights))?,
            },
        })
    }

    /// The section of an int8 file whose gate is `gate`: means as codes of
    /// the hidden layer (rounded, clamped to its codes' range), and per
    /// cluster the weights in codes, `w · s²` for the hidden layer's scale
    /// `s`, as `u16` of the cluster's largest (a scale per cluster).
    fn int8_section(&self, gate: &[LayerDesc], data: &mut Data) -> Result<NoveltyDesc, Error> {
        let units = hidden_units(gate)?;
        self.check(self.means.len(), units)?;
        let hidden = &gate[gate.len() - 2];
        let (scale, (low, high)) = int8_hidden(hidden)?;
        let mut means = Vec::with_capacity(self.means.len() * units);
        let mut weights = Vec::with_capacity(means.capacity());
        let mut scales = Vec::with_capacity(self.means.len());
        for (m, w) in self.means.iter().zip(&self.weights) {
            means.extend(
                m.iter()
                    .map(|&m| (m / scale).round().clamp(low as f32, high as f32) as i16),
            );
            let coded: Vec<f32> = w.iter().map(|&w| w * scale * scale).collect();
            let largest = coded.iter().copied().fold(0.0f32, f32::max);
            let unit = if largest > 0.0 {
                largest / WEIGHT_CODES
            } else {
                0.0
            };
            weights.extend(coded.iter().map(|&w| {
                if unit > 0.0 {
                    (w / unit).round().clamp(0.0, WEIGHT_CODES) as u16
                } else {
                    0
                }
            }));
            scales.push(unit);
        }
        Ok(NoveltyDesc {
            units: units as u32,
            doubt_threshold: self.doubt_threshold,
            gaussians: GaussiansDesc::Int8 {
                means: data.push(&le_bytes(&means, i16::to_le_bytes))?,
                weights: data.push(&le_bytes(&weights, u16::to_le_bytes))?,
                scales: data.push(&le_bytes(&scales, f32::to_le_bytes))?,
            },
        })
    }

    /// The section for a file whose gate is `gate` (f16 or int8
    /// descriptors), as an extension's bytes.
    pub(super) fn section(&self, gate: &[LayerDesc], data: &mut Data) -> Result<Vec<u8>, Error> {
        let desc = match gate.first().map(|l| l.weights) {
            Some(Weights::Int8(_)) => self.int8_section(gate, data)?,
            _ => self.f32_section(gate, data)?,
        };
        postcard::to_stdvec(&desc).map_err(|_| Error::Malformed)
    }

    /// The spec a file's section gives: exact for an f16 file, the codes
    /// dequantized for an int8 one.
    pub fn from_section(section: &NoveltySection<'_>, gate: Network<'_>) -> Self {
        let units = section.units;
        let scale = gate
            .layers()
            .nth(gate.len().wrapping_sub(2))
            .and_then(|l| match l.weights {
                LayerWeights::Int8(q) => q.requant.map(|r| r.output_scale),
                LayerWeights::F16 { .. } => None,
            })
            .unwrap_or(1.0);
        let (mut means, mut weights) = (Vec::new(), Vec::new());
        let clusters = (0..).map_while(|c| section.gaussians.cluster(c, units));
        for (m, w, unit) in clusters {
            match section.gaussians {
                Gaussians::F32 { .. } => {
                    means.push(f32s(m));
                    weights.push(f32s(w));
                }
                Gaussians::Int8 { .. } => {
                    means.push(
                        m.chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 * scale)
                            .collect(),
                    );
                    weights.push(
                        w.chunks_exact(2)
                            .map(|b| {
                                u16::from_le_bytes([b[0], b[1]]) as f32 * unit / (scale * scale)
                            })
                            .collect(),
                    );
                }
            }
        }
        NoveltySpec {
            means,
            weights,
            doubt_threshold: section.doubt_threshold,
        }
    }

    /// The extension list of a file with this section.
    pub(super) fn extensions(section: &[u8]) -> [Extension<'_>; 1] {
        [Extension {
            tag: NOVELTY_TAG,
            bytes: section,
        }]
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The width of the gate's last hidden layer (its last layer's inputs).
fn hidden_units(gate: &[LayerDesc]) -> Result<usize, Error> {
    match gate {
        [.., last] if gate.len() >= 2 => Ok(last.inputs as usize),
        _ => Err(Error::Unrepresentable(
            "a novelty score needs a gate with a hidden layer",
        )),
    }
}

/// An int8 hidden layer's output scale and its codes' range.
fn int8_hidden(layer: &LayerDesc) -> Result<(f32, (i32, i32)), Error> {
    let Weights::Int8(q) = layer.weights else {
        return Err(Error::Unrepresentable("an int8 section for an f16 gate"));
    };
    let r = q
        .requant
        .ok_or(Error::Unrepresentable("an int8 hidden layer without codes"))?;
    let range = if layer.activation.unsigned_codes() {
        (0, 255)
    } else {
        (-128, 127)
    };
    Ok((r.output_scale, range))
}
