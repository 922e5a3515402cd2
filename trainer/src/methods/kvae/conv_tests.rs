//! Tests of the convolutional VAEs ([`super`]): shapes, sampling, training, timings.

use std::time::Instant;

use candle_core::{Device, Tensor};

use super::*;
use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::conv::timing::{median_time, Timing};
use crate::nn::params::Params;
use crate::ops::check::assert_close;
use crate::rng::Rng;

fn normals(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rng.normals(n), shape, &Device::Cpu).unwrap()
}

#[test]
fn shapes_and_parameter_count() {
    let device = Device::Cpu;
    let mut rng = Rng::new(3, 0);
    for shape in [
        ConvShape {
            filters: [2, 3, 4, 5],
            latent: 6,
            batch_norm: false,
        },
        ConvShape {
            batch_norm: true,
            ..ConvShape::small(5)
        },
        ConvShape::small(8),
        ConvShape::big(16),
    ] {
        let k = 3;
        let params = Params::new(1);
        let vaes = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device)).unwrap();
        assert_eq!(params.count(), k * vaes.parameters(), "{shape:?}");
        let x = Tensor::from_vec(
            (0..k * 5 * PIXELS)
                .map(|_| rng.uniform(0.0, 1.0) as f32)
                .collect(),
            (k, 5, PIXELS),
            &device,
        )
        .unwrap();
        let (mu, logvar) = vaes.encode(&x).unwrap();
        assert_eq!(mu.dims(), &[k, 5, shape.latent]);
        assert_eq!(logvar.dims(), &[k, 5, shape.latent]);
        let z = normals(&mut rng, &[k, 7, shape.latent]);
        assert_eq!(vaes.decode(&z).unwrap().dims(), &[k, 7, PIXELS]);
        // The same VAEs run all at once (the GPU default) and two at a
        // time compute the same (the default on the CPU is one at a time).
        let out = vaes.decode(&z).unwrap();
        for group in [k, 2] {
            let again = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device))
                .unwrap()
                .with_group(group);
            assert_eq!(params.count(), k * vaes.parameters(), "no new tensors");
            assert_close(&again.decode(&z).unwrap(), &out, 1e-5, "decode by groups");
            let (mu2, logvar2) = again.encode(&x).unwrap();
            assert_close(&mu2, &mu, 1e-5, "means by groups");
            assert_close(&logvar2, &logvar, 1e-5, "log-variances by groups");
        }
    }
    // The paper's small network, counted by hand.
    let small = ConvShape::small(8).parameters();
    let encoder = (16 * 8 + 8) + (16 * 8 * 16 + 16) + (16 * 16 * 32 + 32) + (16 * 32 * 64 + 64);
    let encoder = encoder + 64 * 16 + 16;
    let decoder =
        (8 * 49 * 64 + 49 * 64) + (16 * 64 * 32 + 32) + (16 * 32 * 16 + 16) + (9 * 16 + 1);
    assert_eq!(small, encoder + decoder);
}

#[test]
fn sampling_decodes_the_trait_draws_in_chunks() {
    let device = Device::Cpu;
    let (k, n, latent) = (2, SAMPLE_CHUNK + 44, 3);
    let params = Params::new(2);
    let shape = ConvShape {
        filters: [2, 3, 4, 5],
        latent,
        batch_norm: false,
    };
    let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device)).unwrap();
    let sample = vaes.sample(n, &mut Rng::new(9, 0), &device).unwrap();
    let z = normals(&mut Rng::new(9, 0), &[k, n, latent]);
    let expected = candle_nn::ops::sigmoid(&vaes.decode(&z).unwrap()).unwrap();
    assert_close(&sample, &expected, 1e-6, "samples");
}

/// Eight 28×28 binary images per VAE: bars and boxes at a few places.
fn synthetic_images(k: usize, per_vae: usize) -> Tensor {
    let mut x = vec![0f32; k * per_vae * PIXELS];
    for j in 0..k {
        for i in 0..per_vae {
            let image = &mut x[(j * per_vae + i) * PIXELS..][..PIXELS];
            let at = 4 + 3 * i;
            for r in 0..SIDE {
                for c in 0..SIDE {
                    let on = if j % 2 == 0 {
                        // Vertical bars.
                        (at..at + 3).contains(&c) && (4..24).contains(&r)
                    } else {
                        // Hollow boxes of growing size.
                        let (lo, hi) = (14 - i - 2, 14 + i + 2);
                        (r == lo || r == hi) && (lo..=hi).contains(&c)
                            || (c == lo || c == hi) && (lo..=hi).contains(&r)
                    };
                    image[r * SIDE + c] = if on { 1.0 } else { 0.0 };
                }
            }
        }
    }
    Tensor::from_vec(x, (k, per_vae, PIXELS), &Device::Cpu).unwrap()
}

#[test]
fn adam_lowers_the_negative_elbo() {
    let device = Device::Cpu;
    let (k, b) = (2, 8);
    let params = Params::new(7);
    let vaes = ConvVaeStack::new(k, ConvShape::small(4), params.var_builder(&device)).unwrap();
    let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(2e-3));
    let x = synthetic_images(k, b);
    let mut rng = Rng::new(7, 1);
    let mut losses = Vec::new();
    let start = Instant::now();
    for _ in 0..200 {
        let eps = normals(&mut rng, &[k, b, 4]);
        let terms = vaes.elbo_terms(&x, &eps).unwrap();
        let per_vae = (terms.reconstruction + terms.kl).unwrap();
        let grads = per_vae.sum_all().unwrap().backward().unwrap();
        opt.step(&grads).unwrap();
        losses.push(per_vae.to_vec1::<f32>().unwrap());
    }
    let mean =
        |rows: &[Vec<f32>], j: usize| rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32;
    for j in 0..k {
        let first = losses[0][j];
        let last = mean(&losses[losses.len() - 10..], j);
        eprintln!("VAE {j}: negative ELBO {first:.1} -> {last:.1}");
        assert!(last < 0.7 * first, "VAE {j}: {first} -> {last}");
    }
    eprintln!("200 steps in {:.2?}", start.elapsed());
}

/// One optimizer step like `vae_step`: ELBO, backward, Adam.
fn step_time(k: usize, b: usize, shape: ConvShape, group: usize) -> Timing {
    let device = Device::Cpu;
    let params = Params::new(1);
    let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device))
        .unwrap()
        .with_group(group);
    let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(1e-3));
    let mut rng = Rng::new(2, 0);
    let x = Tensor::from_vec(
        (0..k * b * PIXELS)
            .map(|_| rng.uniform(0.0, 1.0) as f32)
            .collect(),
        (k, b, PIXELS),
        &device,
    )
    .unwrap();
    let latent = vaes.latent();
    median_time(10, || {
        let eps = normals(&mut rng, &[k, b, latent]);
        let terms = vaes.elbo_terms(&x, &eps).unwrap();
        let loss = (terms.reconstruction + terms.kl)
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    })
}

/// Timings for the report: `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
/// cargo test --release -p trainer --lib kvae::conv::tests::timings --
/// --ignored --nocapture` (one thread, as `main` sets them; the CPU
/// times are the work done whatever else the machine runs). The layers'
/// own timings are `nn::conv::tests::timings`.
#[test]
#[ignore]
fn timings() {
    for (k, b, shape, name, group) in [
        (15, 32, ConvShape::small(16), "small", 1),
        (15, 32, ConvShape::small(16), "small", 15),
        (1, 32, ConvShape::small(16), "small", 1),
        (1, 32, ConvShape::big(16), "big", 1),
    ] {
        let t = step_time(k, b, shape, group);
        eprintln!("step K={k} B={b} {name}, {group} VAE(s) at a time: {t}");
    }
    let device = Device::Cpu;
    for group in [1, 15] {
        let params = Params::new(1);
        let vaes = ConvVaeStack::new(15, ConvShape::small(16), params.var_builder(&device))
            .unwrap()
            .with_group(group);
        let mut rng = Rng::new(3, 0);
        let decode = median_time(10, || {
            let z = normals(&mut rng, &[15, 500, 16]);
            vaes.decode(&z).unwrap();
        });
        eprintln!("decode K=15 N=500 small, {group} VAE(s) at a time: {decode}");
        let sample = median_time(10, || {
            vaes.sample(500, &mut rng, &device).unwrap();
        });
        eprintln!("sample K=15 N=500 small, {group} VAE(s) at a time: {sample}");
    }
}
