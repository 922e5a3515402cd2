//! kVAE generalizes k-means: with an identity decoder `x = z + b_j` (fixed
//! noise) and a constant encoder `q(z|x) = N(0, I)`, training VAE j on its
//! points moves `b_j` to their mean (the k-means update) and reassigning by
//! likelihood ratio sends each point to the nearest `b_j` (the k-means
//! assignment, since every `p_gj = N(b_j, 2I)` has the same covariance).

use candle_core::{Device, Tensor};
use trainer::data::Points;
use trainer::methods::kvae::{
    self, DiscTraining, RoundContext, Scorer, VaeBatches, VaeNets, VaeShape, VaeStack,
};
use trainer::nn::adam::{Adam, AdamConfig};
use trainer::nn::likelihood::Observation;
use trainer::nn::params::Params;
use trainer::rng::Rng;

const K: usize = 3;

/// Three overlapping 2-D blobs, 200 points each.
fn blobs(rng: &mut Rng) -> Points {
    let centres = [(-2.0, 0.0), (2.0, 0.0), (0.0, 3.0)];
    let mut x = Vec::new();
    for i in 0..600 {
        let (cx, cy) = centres[i % 3];
        x.push((cx + 1.2 * rng.normal()) as f32);
        x.push((cy + 1.2 * rng.normal()) as f32);
    }
    Points::new(x, 2)
}

fn nearest(p: &[f32], centres: &[[f32; 2]]) -> usize {
    let d = |c: &[f32; 2]| (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
    (0..centres.len())
        .min_by(|&a, &b| d(&centres[a]).total_cmp(&d(&centres[b])))
        .unwrap()
}

/// K "VAEs" with a constant encoder (mean 0, log-variance 0) and the
/// decoder `z ↦ z + b_j`; only the offsets `b_j` are handed to Adam.
fn kmeans_vaes(start: &[[f32; 2]], device: &Device) -> (VaeStack, Params, Adam) {
    let shape = VaeShape {
        data: 2,
        latent: 2,
        hidden: vec![],
        observation: Observation::Real { std: Some(1.0) },
    };
    let params = Params::new(1);
    let vaes = VaeStack::new(K, shape, params.var_builder(device)).unwrap();
    let set = |name: &str, values: Vec<f32>, shape: (usize, usize, usize)| {
        let var = params
            .get(name)
            .unwrap_or_else(|| panic!("no tensor {name}"));
        var.set(&Tensor::from_vec(values, shape, device).unwrap())
            .unwrap();
    };
    set("encoder.fc0.weight", vec![0.0; K * 2 * 4], (K, 2, 4));
    set("encoder.fc0.bias", vec![0.0; K * 4], (K, 1, 4));
    let identity: Vec<f32> = (0..K).flat_map(|_| [1.0, 0.0, 0.0, 1.0]).collect();
    set("decoder.fc0.weight", identity, (K, 2, 2));
    set(
        "decoder.fc0.bias",
        start.iter().flatten().copied().collect(),
        (K, 1, 2),
    );
    let offsets = params.get("decoder.fc0.bias").unwrap();
    let opt = Adam::new(
        vec![("decoder.fc0.bias".into(), offsets)],
        AdamConfig::with_lr(0.02),
    );
    (vaes, params, opt)
}

fn offsets(params: &Params) -> Vec<[f32; 2]> {
    let v: Vec<f32> = params
        .get("decoder.fc0.bias")
        .unwrap()
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    v.chunks(2).map(|c| [c[0], c[1]]).collect()
}

#[test]
fn kvae_rounds_with_identity_decoder_are_lloyd_iterations() {
    let device = Device::Cpu;
    let mut rng = Rng::new(5, 0);
    let data = blobs(&mut rng);
    // A poor start, so the iterations have work to do.
    let start = [[-1.0f32, 2.0], [0.0, -1.0], [1.0, 2.5]];
    let (vaes, params, mut opt) = kmeans_vaes(&start, &device);

    let mut lloyd: Vec<[f32; 2]> = start.to_vec();
    let mut assignment: Vec<usize> = (0..data.n).map(|i| nearest(data.row(i), &lloyd)).collect();
    for round in 0..3 {
        // k-means update: the mean of each group.
        let groups = kvae::members(&assignment, K);
        for (j, g) in groups.iter().enumerate() {
            let n = g.len() as f32;
            lloyd[j] = [
                g.iter().map(|&i| data.row(i)[0]).sum::<f32>() / n,
                g.iter().map(|&i| data.row(i)[1]).sum::<f32>() / n,
            ];
        }
        // kVAE step (a): train each VAE on its group.
        // 60 epochs of n / (K · 32) steps per VAE.
        let steps = 60 * kvae::vae_steps_per_epoch(data.n, K, 32);
        let batches = VaeBatches {
            batch: 32,
            freeze_small: false,
        };
        let mut ctx = RoundContext {
            data: &data,
            rng: &mut rng,
            device: &device,
        };
        kvae::train_vaes(&vaes, &mut opt, &groups, steps, batches, &mut ctx).unwrap();
        let learned = offsets(&params);
        for j in 0..K {
            let err = (learned[j][0] - lloyd[j][0])
                .abs()
                .max((learned[j][1] - lloyd[j][1]).abs());
            assert!(
                err < 0.12,
                "round {round}, VAE {j}: offset {:?}, group mean {:?}",
                learned[j],
                lloyd[j]
            );
        }
        // kVAE step (c) with the exact-ratio scorer against the k-means assignment.
        let scores = kvae::scores(
            Scorer::Likelihood { samples: 2000 },
            None,
            &vaes,
            &data,
            &mut rng,
            &device,
        )
        .unwrap();
        let (next, held) = kvae::reassign(&scores, &assignment, None, 0);
        assert_eq!(held, 0);
        let kmeans: Vec<usize> = (0..data.n).map(|i| nearest(data.row(i), &lloyd)).collect();
        let agree = next.iter().zip(&kmeans).filter(|(a, b)| a == b).count();
        assert!(
            agree as f64 >= 0.98 * data.n as f64,
            "round {round}: {agree}/{} agree with k-means",
            data.n
        );
        assignment = kmeans;
    }
}

#[test]
fn importance_sampled_likelihood_matches_the_closed_form() {
    // With the constant encoder, p_gj(x) = N(x; b_j, 2I) exactly.
    let device = Device::Cpu;
    let start = [[0.0f32, 0.0], [3.0, 1.0], [-2.0, 2.0]];
    let (vaes, _, _) = kmeans_vaes(&start, &device);
    let mut rng = Rng::new(9, 0);
    let x = Points::new(vec![0.5, -0.5, 2.0, 1.5, -1.0, 1.0], 2);
    let ll = vaes
        .log_likelihood_is(&x.slice(0, 3, &device).unwrap(), 4000, &mut rng)
        .unwrap();
    for (j, (c, row)) in start.iter().zip(&ll).enumerate() {
        for (b, &estimate) in row.iter().enumerate() {
            let p = x.row(b);
            let sq = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
            let exact = -(sq as f64) / 4.0 - (4.0 * std::f64::consts::PI).ln();
            assert!(
                (estimate - exact).abs() < 0.1,
                "VAE {j}, point {b}: {estimate} vs {exact}"
            );
        }
    }
}

#[test]
fn trained_discriminators_recover_the_kmeans_assignment() {
    // The method's own scorer: D_j separates the data from N(b_j, 2I), and
    // −logit_j = log(1 − D_j)/D_j estimates log p_gj/p_d.
    let device = Device::Cpu;
    let mut rng = Rng::new(11, 0);
    let data = blobs(&mut rng);
    let centres = [[-2.0f32, 0.0], [2.0, 0.0], [0.0, 3.0]];
    let (vaes, _, _) = kmeans_vaes(&centres, &device);
    let disc_params = Params::new(3);
    let disc = kvae::discriminators(K, 2, &[32, 32], &disc_params, &device).unwrap();
    let mut opt = Adam::new(disc_params.vars(), AdamConfig::with_lr(3e-3));
    let training = DiscTraining {
        steps: 1500,
        batch: 128,
        noise: 0.0,
        sharpen: false,
    };
    let mut ctx = RoundContext {
        data: &data,
        rng: &mut rng,
        device: &device,
    };
    kvae::train_discriminators(&disc, &mut opt, &vaes, training, &mut ctx).unwrap();
    let scores = kvae::scores(
        Scorer::Discriminator,
        Some(&disc),
        &vaes,
        &data,
        &mut rng,
        &device,
    )
    .unwrap();
    let (next, _) = kvae::reassign(&scores, &vec![0; data.n], None, 0);
    let kmeans: Vec<usize> = (0..data.n)
        .map(|i| nearest(data.row(i), &centres))
        .collect();
    let agree = next.iter().zip(&kmeans).filter(|(a, b)| a == b).count();
    assert!(
        agree as f64 >= 0.9 * data.n as f64,
        "{agree}/{} agree with k-means",
        data.n
    );
}

#[test]
fn load_balancing_keeps_a_starved_vae_on_its_points() {
    // Every point prefers VAE 0; VAE 1 would be left empty.
    let scores = vec![vec![1.0f32, 0.0]; 10];
    let previous = vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    let (next, held) = kvae::reassign(&scores, &previous, None, 3);
    assert_eq!(held, 1);
    assert_eq!(next, previous);
    // Below the threshold nothing is held: VAE 1 loses everything.
    let (next, held) = kvae::reassign(&scores, &previous, None, 0);
    assert_eq!(held, 0);
    assert_eq!(next, vec![0; 10]);
    // A prior can outweigh the scores.
    let (next, _) = kvae::reassign(&scores, &previous, Some(&[0.01, 0.99]), 0);
    assert_eq!(next, vec![1; 10]);
}
