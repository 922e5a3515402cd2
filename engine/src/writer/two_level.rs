//! Two-level models (format version 3): each cluster a mixture of styles
//! with a style gate of its own. A model whose clusters all have one style
//! is written as a flat model, version 2, byte for byte what
//! [`ModelSpec`] writes.

use std::vec::Vec;

use super::novelty::NoveltySpec;
use super::{
    f16_network, image_maxes, int8_network, latent_maxes, latent_scale, Calibration, Data,
    DenseF32, ModelSpec, IMAGE_SCALE,
};
use crate::format::{self, ClusterDesc, LayerDesc, ModelRepr};
use crate::Error;

/// One cluster of a two-level model, with f32 tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Prior weight of each style within the cluster; its length is the
    /// number of styles S.
    pub style_weights: Vec<f32>,
    /// The style gate's layers, input first (pixels to S logits); empty
    /// when S = 1.
    pub gate: Vec<DenseF32>,
    /// One decoder per style, input first.
    pub decoders: Vec<Vec<DenseF32>>,
}

/// A two-level model with f32 tensors: the header fields and the gate of
/// [`ModelSpec`] (whose `decoders` stay empty: the clusters hold them), and
/// one [`ClusterSpec`] per cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLevelSpec {
    /// Header fields and the cluster gate; `decoders` empty.
    pub model: ModelSpec,
    /// The clusters, cluster 0 first.
    pub clusters: Vec<ClusterSpec>,
    /// The novelty score's parameters, if the file is to carry them (a
    /// flat model with them is written as version 3: the section is an
    /// extension of the version-3 description).
    pub novelty: Option<NoveltySpec>,
}

/// What [`TwoLevelSpec::to_int8_bytes`] needs: the largest output
/// magnitude of every layer on calibration inputs, and the largest latent
/// magnitude.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLevelCalibration {
    /// Largest `|output|` of each layer of the cluster gate.
    pub gate: Vec<f32>,
    /// Of each layer of each cluster's style gate.
    pub style_gates: Vec<Vec<f32>>,
    /// Of each layer of each decoder of each cluster.
    pub decoders: Vec<Vec<Vec<f32>>>,
    /// Largest `|z|` among the latent draws.
    pub latent: f32,
}

impl From<ModelSpec> for TwoLevelSpec {
    /// A flat model as a two-level one whose clusters have one style each
    /// (weight 1, no style gate): it writes the same bytes as `flat`.
    ///
    /// ```
    /// # use engine::writer::{ModelSpec, TwoLevelSpec};
    /// let bytes = engine::testing::tiny_model_bytes();
    /// let flat = ModelSpec::from_bytes(&bytes).unwrap();
    /// let two_level = TwoLevelSpec::from(flat.clone());
    /// assert_eq!(two_level.to_bytes().unwrap(), flat.to_bytes().unwrap());
    /// ```
    fn from(flat: ModelSpec) -> Self {
        let ModelSpec { decoders, .. } = &flat;
        let clusters = decoders
            .iter()
            .map(|d| ClusterSpec {
                style_weights: std::vec![1.0],
                gate: Vec::new(),
                decoders: std::vec![d.clone()],
            })
            .collect();
        TwoLevelSpec {
            model: ModelSpec {
                decoders: Vec::new(),
                ..flat
            },
            clusters,
            novelty: None,
        }
    }
}

impl TwoLevelSpec {
    /// The model of a file as f32 tensors (exact for f16 files,
    /// dequantized for int8 ones): a flat (version 2) file gives clusters
    /// of one style.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let repr = ModelRepr::parse(bytes)?;
        let model = ModelSpec::from_parts(
            repr.header(),
            DenseF32::from_network(repr.gate()),
            Vec::new(),
        );
        let clusters = (0..repr.header().experts as usize)
            .map(|c| ClusterSpec {
                style_weights: (0..repr.styles(c))
                    .filter_map(|s| repr.style_weight(c, s))
                    .collect(),
                gate: repr
                    .style_gate(c)
                    .map(DenseF32::from_network)
                    .unwrap_or_default(),
                decoders: (0..repr.styles(c))
                    .filter_map(|s| repr.decoder_of(c, s))
                    .map(DenseF32::from_network)
                    .collect(),
            })
            .collect();
        let novelty = repr
            .novelty()
            .map(|section| NoveltySpec::from_section(section, repr.gate()));
        Ok(TwoLevelSpec {
            model,
            clusters,
            novelty,
        })
    }

    /// The flat model this is when every cluster has one style (and no
    /// style gate) and there is no novelty section.
    fn flat(&self) -> Option<ModelSpec> {
        if self.novelty.is_some() {
            return None;
        }
        let decoders = self
            .clusters
            .iter()
            .map(|c| match &c.decoders[..] {
                [d] if c.style_weights.len() == 1 && c.gate.is_empty() => Some(d.clone()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        Some(ModelSpec {
            decoders,
            ..self.model.clone()
        })
    }

    /// Checks what the parser cannot see before the file is encoded.
    fn check(&self) -> Result<(), Error> {
        if !self.model.decoders.is_empty() {
            return Err(Error::Unrepresentable(
                "two-level spec with decoders outside its clusters",
            ));
        }
        self.model.check_capacity()
    }

    /// Quantizes to f16 and writes a complete, validated file: version 3,
    /// or version 2 when every cluster has one style and there is no
    /// novelty section.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        if let Some(flat) = self.flat() {
            return flat.to_bytes();
        }
        self.check()?;
        let mut data = Data::default();
        let gate = f16_network(&self.model.gate, &mut data)?;
        let clusters = self
            .clusters
            .iter()
            .map(|c| {
                let gate = f16_network(&c.gate, &mut data)?;
                let decoders = c
                    .decoders
                    .iter()
                    .map(|d| f16_network(d, &mut data))
                    .collect::<Result<_, _>>()?;
                Ok((gate, decoders))
            })
            .collect::<Result<_, Error>>()?;
        self.finish(gate, clusters, data)
    }

    /// [`ModelSpec::calibrate`] for every network: the cluster gate and
    /// every style gate on `images`, every decoder on the latent draws of
    /// `seed`.
    pub fn calibrate(&self, images: &[u8], seed: u64) -> TwoLevelCalibration {
        let pixels = self.model.image.pixels();
        let decoders: Vec<&[DenseF32]> = self
            .clusters
            .iter()
            .flat_map(|c| c.decoders.iter().map(Vec::as_slice))
            .collect();
        let (mut maxes, latent) = latent_maxes(&decoders, self.model.latent, seed);
        let mut maxes = maxes.drain(..);
        TwoLevelCalibration {
            gate: image_maxes(&self.model.gate, images, pixels),
            style_gates: self
                .clusters
                .iter()
                .map(|c| image_maxes(&c.gate, images, pixels))
                .collect(),
            decoders: self
                .clusters
                .iter()
                .map(|c| maxes.by_ref().take(c.decoders.len()).collect())
                .collect(),
            latent,
        }
    }

    /// Quantizes to 8-bit integers and writes a complete, validated file,
    /// as [`ModelSpec::to_int8_bytes`] does: the style gates like the gate
    /// (pixels in, `f32` logits out), the style decoders like decoders.
    /// Version 2 when every cluster has one style.
    pub fn to_int8_bytes(&self, calibration: &TwoLevelCalibration) -> Result<Vec<u8>, Error> {
        let shapes = |maxes: &[Vec<f32>], nets: &[Vec<DenseF32>]| {
            maxes.len() == nets.len() && maxes.iter().zip(nets).all(|(m, n)| m.len() == n.len())
        };
        if calibration.gate.len() != self.model.gate.len()
            || calibration.style_gates.len() != self.clusters.len()
            || calibration.decoders.len() != self.clusters.len()
            || self
                .clusters
                .iter()
                .zip(&calibration.style_gates)
                .zip(&calibration.decoders)
                .any(|((c, g), d)| g.len() != c.gate.len() || !shapes(d, &c.decoders))
        {
            return Err(Error::Unrepresentable(
                "calibration does not match the model's layers",
            ));
        }
        if let Some(flat) = self.flat() {
            return flat.to_int8_bytes(&Calibration {
                gate: calibration.gate.clone(),
                decoders: calibration.decoders.iter().flatten().cloned().collect(),
                latent: calibration.latent,
            });
        }
        self.check()?;
        let mut data = Data::default();
        let gate = int8_network(
            &self.model.gate,
            &calibration.gate,
            IMAGE_SCALE,
            true,
            &mut data,
        )?;
        let latent = latent_scale(calibration.latent);
        let clusters = self
            .clusters
            .iter()
            .zip(&calibration.style_gates)
            .zip(&calibration.decoders)
            .map(|((c, g), d)| {
                let gate = int8_network(&c.gate, g, IMAGE_SCALE, true, &mut data)?;
                let decoders = c
                    .decoders
                    .iter()
                    .zip(d)
                    .map(|(d, m)| int8_network(d, m, latent, false, &mut data))
                    .collect::<Result<_, _>>()?;
                Ok((gate, decoders))
            })
            .collect::<Result<_, Error>>()?;
        self.finish(gate, clusters, data)
    }

    /// Emits the version-3 description and data, then parses the result
    /// back.
    fn finish(
        &self,
        gate: Vec<LayerDesc>,
        clusters: Vec<(Vec<LayerDesc>, Vec<Vec<LayerDesc>>)>,
        mut data: Data,
    ) -> Result<Vec<u8>, Error> {
        let header = self.model.header()?;
        let section = match &self.novelty {
            Some(n) => Some(n.section(&gate, &mut data)?),
            None => None,
        };
        let extensions = match &section {
            Some(bytes) => NoveltySpec::extensions(bytes).to_vec(),
            None => Vec::new(),
        };
        let decoders: Vec<Vec<&[LayerDesc]>> = clusters
            .iter()
            .map(|(_, d)| d.iter().map(Vec::as_slice).collect())
            .collect();
        let clusters: Vec<ClusterDesc<'_>> = clusters
            .iter()
            .zip(&self.clusters)
            .zip(&decoders)
            .map(|(((gate, _), spec), decoders)| ClusterDesc {
                style_weights: &spec.style_weights,
                gate,
                decoders,
            })
            .collect();
        let len =
            format::emitted_len_two_level(&header, &gate, &clusters, &extensions, data.0.len())?;
        let mut out = std::vec![0u8; len];
        let n = format::emit_two_level(&header, &gate, &clusters, &extensions, &data.0, &mut out)?;
        out.truncate(n);
        ModelRepr::parse(&out)?;
        Ok(out)
    }
}
