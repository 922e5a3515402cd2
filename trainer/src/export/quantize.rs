//! The exported weight types (f16, int8) and how each compares with the
//! f32 model it was made from.
//!
//! int8 calibration reads training images only (the first
//! [`CALIBRATION_IMAGES`], no labels) and latent draws; the comparison reads
//! the test set.

use std::fmt::Write as _;

use candle_core::Device;
use engine::writer::TwoLevelSpec;

use crate::eval::metrics::{evaluate, Evaluation};
use crate::eval::reference::ReferenceModel;

/// The element type of an exported model's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WeightType {
    /// IEEE binary16, computed in f32 (the design's default).
    #[default]
    F16,
    /// 8-bit integers with calibrated scales, computed in integers
    /// (microcontrollers without an FPU).
    Int8,
}

impl WeightType {
    /// `"f16"` or `"int8"`.
    pub fn name(self) -> &'static str {
        match self {
            WeightType::F16 => "f16",
            WeightType::Int8 => "int8",
        }
    }
}

/// Training images the int8 calibration runs the gate on.
pub const CALIBRATION_IMAGES: usize = 10_000;

/// Seed of the calibration's latent draws.
const CALIBRATION_SEED: u64 = 0xCA11_B8A7;

/// Encodes `spec` with `weights` (version 2 when every cluster has one
/// style, version 3 otherwise); int8 calibrates on the first
/// [`CALIBRATION_IMAGES`] of `train_pixels`.
pub fn encode(
    spec: &TwoLevelSpec,
    weights: WeightType,
    train_pixels: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let bytes = match weights {
        WeightType::F16 => spec.to_bytes(),
        WeightType::Int8 => {
            let pixels = spec.model.image.pixels();
            let n = (train_pixels.len() / pixels.max(1)).min(CALIBRATION_IMAGES);
            let images = &train_pixels[..n * pixels];
            spec.to_int8_bytes(&spec.calibrate(images, CALIBRATION_SEED))
        }
    };
    bytes.map_err(|e| anyhow::anyhow!("cannot encode the model as {}: {e}", weights.name()))
}

/// One exported form of the model, scored on the test set.
#[derive(Debug, Clone)]
pub struct Variant {
    /// `f32`, `f16` or `int8`.
    pub name: &'static str,
    /// File size (0 for f32, which is not a file).
    pub bytes: usize,
    /// Clustering of the test images (when they have labels).
    pub eval: Option<Evaluation>,
    /// The cluster of each test image.
    pub pred: Vec<usize>,
    /// Fraction of test images given the f32 model's cluster.
    pub agreement: f64,
    /// The style of each test image (all 0 for a flat model).
    pub styles: Vec<usize>,
    /// Fraction of test images given the f32 model's cluster and style.
    pub style_agreement: f64,
    /// Mean absolute difference of generated pixel intensities from f32's.
    pub pixel_mean: f64,
    /// Largest absolute difference of a generated pixel intensity from f32's.
    pub pixel_max: f64,
}

/// Samples per expert in the decoders' comparison.
const SAMPLES: usize = 32;

/// Scores the f32 model and each encoded file on `test` (`n` images of
/// `pixels`, class `labels` if any): clustering, agreement with f32's
/// cluster (and style), and the generated images' distance from f32's for
/// the same seeds, for every cluster and style.
pub fn compare(
    spec: &TwoLevelSpec,
    files: &[(&'static str, &[u8])],
    pixels: &[u8],
    labels: Option<&[u8]>,
    n: usize,
) -> anyhow::Result<Vec<Variant>> {
    let k = spec.clusters.len();
    let reference = ReferenceModel::from_two_level(spec, &Device::Cpu)?;
    let f32_routes = reference.classify(pixels, n)?;
    let f32_pred: Vec<usize> = f32_routes.iter().map(|r| r.0).collect();
    // The f32 decoders on the latent vectors `generate` draws for each seed.
    let seeds: Vec<(usize, usize, u64)> = (0..k)
        .flat_map(|c| (0..reference.styles(c)).map(move |s| (c, s)))
        .flat_map(|(c, s)| (0..SAMPLES as u64).map(move |i| (c, s, 1000 + i)))
        .collect();
    let mut f32_images = Vec::with_capacity(seeds.len());
    for &(c, s, seed) in &seeds {
        let mut z = vec![0.0f32; spec.model.latent];
        engine::rng::SplitMix64::new(seed).fill_normal(&mut z);
        f32_images.push(reference.decode_style(c, s, &z)?);
    }
    let mut out = vec![Variant {
        name: "f32",
        bytes: 0,
        eval: labels.map(|l| evaluate(&f32_pred, l, k)),
        pred: f32_pred.clone(),
        agreement: 1.0,
        styles: f32_routes.iter().map(|r| r.1).collect(),
        style_agreement: 1.0,
        pixel_mean: 0.0,
        pixel_max: 0.0,
    }];
    for &(name, bytes) in files {
        let model = crate::eval::host::parse(bytes, name)?;
        let routes = crate::eval::host::classify(&model, pixels, n)?;
        let pred: Vec<usize> = routes.iter().map(|r| r.0).collect();
        let agree = pred.iter().zip(&f32_pred).filter(|(a, b)| a == b).count();
        let both = routes
            .iter()
            .zip(&f32_routes)
            .filter(|(a, b)| a == b)
            .count();
        let mut ws = engine::host::workspace();
        let (mut sum, mut max, mut count) = (0.0f64, 0.0f64, 0usize);
        for (&(c, s, seed), reference) in seeds.iter().zip(&f32_images) {
            let img = model
                .generate_style(&mut ws, c, s, seed)
                .map_err(|err| anyhow::anyhow!("{name}: {err}"))?;
            for (a, b) in img.iter().zip(reference) {
                let d = (a - b).abs() as f64;
                sum += d;
                max = max.max(d);
                count += 1;
            }
        }
        out.push(Variant {
            name,
            bytes: bytes.len(),
            eval: labels.map(|l| evaluate(&pred, l, k)),
            pred,
            agreement: agree as f64 / n.max(1) as f64,
            styles: routes.iter().map(|r| r.1).collect(),
            style_agreement: both as f64 / n.max(1) as f64,
            pixel_mean: sum / count.max(1) as f64,
            pixel_max: max,
        });
    }
    Ok(out)
}

/// The comparison as a Markdown table; with `styles`, a column for the
/// agreement on (cluster, style).
pub fn table(variants: &[Variant], styles: bool) -> String {
    let mut s = String::new();
    let (style_head, style_rule) = if styles {
        (" (cluster, style) = f32's |", "---:|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        s,
        "| weights | file | test ACC | NMI | ARI | argmax = f32's |{style_head} generated pixels vs f32: mean / max abs. difference |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|{style_rule}---|");
    for v in variants {
        let file = if v.bytes == 0 {
            "–".to_string()
        } else {
            format!("{} B", v.bytes)
        };
        let pixels = if v.name == "f32" {
            "–".to_string()
        } else {
            format!("{:.5} / {:.4}", v.pixel_mean, v.pixel_max)
        };
        let scores = match &v.eval {
            Some(e) => format!("{:.4} | {:.4} | {:.4}", e.acc, e.nmi, e.ari),
            None => "– | – | –".to_string(),
        };
        let style = if styles {
            format!(" {:.2}% |", 100.0 * v.style_agreement)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {file} | {scores} | {:.2}% |{style} {pixels} |",
            v.name,
            100.0 * v.agreement
        );
    }
    s
}
