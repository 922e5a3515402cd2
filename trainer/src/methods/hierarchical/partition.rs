//! The two-level start: the one-level mixture's label-free partition into
//! K clusters ([`crate::methods::mixture::partition`]), then each cluster
//! split into S styles by k-means on its images' pixels
//! ([`crate::init::kmeans`]). No labels.

use std::path::Path;

use crate::data::Split;
use crate::init::kmeans::{kmeans, KMeansConfig};
use crate::rng::Rng;

use super::config::HierarchicalConfig;

/// Each training image's VAE `c·S + s`: its cluster `c` of the label-free
/// partition (cached in `run_dir`) and its style `s` within it.
pub fn partition(
    cfg: &HierarchicalConfig,
    train: &Split,
    run_dir: &Path,
    verbose: bool,
) -> anyhow::Result<Vec<usize>> {
    let clusters =
        crate::methods::mixture::partition::partition(&cfg.mixture, train, run_dir, verbose)?;
    let styles = split_styles(
        &clusters,
        cfg.mixture.arch.experts,
        cfg.styles,
        &train.pixels,
        cfg.mixture.seed,
    );
    if verbose {
        println!(
            "styles: each cluster split in {} by k-means on its pixels",
            cfg.styles
        );
    }
    Ok(clusters
        .iter()
        .zip(&styles)
        .map(|(&c, &s)| c * cfg.styles + s)
        .collect())
}

/// The style (0..`styles`) of every image within its cluster: k-means with
/// `styles` parts on the pixels (scaled to [0, 1]) of each cluster's
/// images; a cluster of fewer images than styles puts them in turn.
pub fn split_styles(
    clusters: &[usize],
    k: usize,
    styles: usize,
    pixels: &[u8],
    seed: u64,
) -> Vec<usize> {
    let mut style = vec![0; clusters.len()];
    if styles <= 1 || clusters.is_empty() {
        return style;
    }
    let p = pixels.len() / clusters.len();
    let mut rng = Rng::new(seed, 5);
    for c in 0..k {
        let members: Vec<usize> = (0..clusters.len()).filter(|&i| clusters[i] == c).collect();
        if members.len() < styles {
            for (j, &i) in members.iter().enumerate() {
                style[i] = j % styles;
            }
            continue;
        }
        let data: Vec<f32> = members
            .iter()
            .flat_map(|&i| pixels[i * p..(i + 1) * p].iter().map(|&v| v as f32 / 255.0))
            .collect();
        let cfg = KMeansConfig {
            k: styles,
            restarts: 3,
            max_iter: 30,
        };
        let km = kmeans(&data, p, &cfg, &mut rng);
        for (&i, &s) in members.iter().zip(&km.assignment) {
            style[i] = s;
        }
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_split_each_cluster_by_its_pixels() {
        // Two clusters of 4-pixel images; within each, two obvious looks.
        let look = |a: u8, b: u8| vec![a, a, b, b];
        let images = [
            (0, look(255, 0)),
            (0, look(250, 0)),
            (0, look(0, 255)),
            (0, look(0, 250)),
            (1, look(255, 255)),
            (1, look(0, 0)),
            (1, look(255, 250)),
        ];
        let clusters: Vec<usize> = images.iter().map(|(c, _)| *c).collect();
        let pixels: Vec<u8> = images.iter().flat_map(|(_, p)| p.clone()).collect();
        let s = split_styles(&clusters, 2, 2, &pixels, 1);
        assert_eq!(s[0], s[1]);
        assert_eq!(s[2], s[3]);
        assert_ne!(s[0], s[2]);
        assert_eq!(s[4], s[6]);
        assert_ne!(s[4], s[5]);
        assert_eq!(split_styles(&clusters, 2, 1, &pixels, 1), vec![0; 7]);
    }
}
