//! Model files with a novelty section (`engine/FORMAT.md`, *Novelty*),
//! written with the engine's writer, for the tests of the `novelty` and
//! `known` columns.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use engine::rng::SplitMix64;
use engine::writer::{NoveltySpec, TwoLevelSpec};
use engine::Activation::{Identity, Relu, Sigmoid};

/// A flat model of 4 experts whose gate has two hidden layers (the section
/// needs one), with label map `[3, 1, 4, 0]`.
const GATE: &[(usize, usize, engine::Activation)] =
    &[(784, 64, Relu), (64, 32, Relu), (32, 4, Identity)];
const DECODER: &[(usize, usize, engine::Activation)] = &[(3, 784, Sigmoid)];

/// `count` 28×28 images of blobs of ink at random places, as an IDX image
/// stack's pixels.
pub fn blobs(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut out = vec![0u8; count * 784];
    for img in out.chunks_exact_mut(784) {
        let (cx, cy) = (rng.next_unit() * 20.0 + 4.0, rng.next_unit() * 20.0 + 4.0);
        let r = rng.next_unit() * 6.0 + 2.0;
        for (i, p) in img.iter_mut().enumerate() {
            let (x, y) = ((i % 28) as f32, (i / 28) as f32);
            if (x - cx).powi(2) + (y - cy).powi(2) < r * r {
                *p = (155.0 + rng.next_unit() * 100.0) as u8;
            }
        }
    }
    out
}

/// A novelty section of zero means and unit variances, every cluster's
/// threshold `threshold`, the doubt's 1 (never passed).
fn section(threshold: f32) -> NoveltySpec {
    let (k, d) = (4, 32);
    NoveltySpec::from_gaussians(
        &vec![vec![0.0; d]; k],
        &vec![vec![1.0; d]; k],
        &[threshold; 4],
        1.0,
    )
}

/// The f16 and int8 files of a model with a novelty section, written into
/// `dir`: the threshold is the median distance of blob images, so that
/// about half of such images are known and half not.
pub fn novelty_models(dir: &Path) -> (PathBuf, PathBuf) {
    let mut spec = TwoLevelSpec::from(engine::testing::random_spec(GATE, DECODER, 4, 11));
    spec.model.label_map = Some(vec![3, 1, 4, 0]);
    spec.novelty = Some(section(1.0));
    let raw = spec.to_bytes().unwrap();
    let model = engine::Model::from_bytes(&raw).unwrap();
    let mut ws = engine::host::workspace();
    let mut distances: Vec<f32> = blobs(101, 5)
        .chunks_exact(784)
        .map(|img| {
            model
                .classify(&mut ws, img)
                .unwrap()
                .novelty
                .unwrap()
                .distance
        })
        .collect();
    distances.sort_by(f32::total_cmp);
    spec.novelty = Some(section(distances[50].max(1e-3)));
    let f16 = dir.join("novelty.bin");
    std::fs::write(&f16, spec.to_bytes().unwrap()).unwrap();
    let int8 = dir.join("novelty-int8.bin");
    let calibration = spec.calibrate(&blobs(200, 3), 5);
    std::fs::write(&int8, spec.to_int8_bytes(&calibration).unwrap()).unwrap();
    (f16, int8)
}

/// `images` (28×28 each) as an IDX file in `dir`.
pub fn idx_file(dir: &Path, name: &str, images: &[u8]) -> PathBuf {
    let set = trainer::data::Images {
        n: images.len() / 784,
        rows: 28,
        cols: 28,
        pixels: images.to_vec(),
    };
    let path = dir.join(name);
    std::fs::write(&path, trainer::data::encode_images(&set)).unwrap();
    path
}
