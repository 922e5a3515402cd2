//! Who trains on what: groups of points from an assignment, random
//! splits, and the batches each VAE draws from its group.

use crate::rng::Rng;

/// Members of each of `k` groups.
pub fn members(assignment: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![Vec::new(); k];
    for (i, &a) in assignment.iter().enumerate() {
        m[a].push(i);
    }
    m
}

/// A uniformly random split of `n` points into `k` parts of equal size (±1).
pub fn random_split(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut assignment = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        assignment[i] = pos % k;
    }
    assignment
}

/// Share of points held by each of `k` VAEs.
pub fn shares(assignment: &[usize], k: usize) -> Vec<f64> {
    let mut s = vec![0.0; k];
    for &a in assignment {
        s[a] += 1.0;
    }
    let n = assignment.len().max(1) as f64;
    s.iter().map(|c| c / n).collect()
}

/// Draws batches for each group, reshuffling a group when it runs out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batcher {
    order: Vec<Vec<usize>>,
    pos: Vec<usize>,
}

impl Batcher {
    /// A batcher over `groups` (each group's members).
    pub fn new(groups: &[Vec<usize>]) -> Self {
        Batcher {
            order: groups.to_vec(),
            pos: vec![usize::MAX; groups.len()],
        }
    }

    /// Whether group `g` has no members (its loss is masked out).
    pub fn is_empty(&self, g: usize) -> bool {
        self.order.get(g).is_none_or(Vec::is_empty)
    }

    /// Members of group `g`.
    pub fn len(&self, g: usize) -> usize {
        self.order.get(g).map_or(0, Vec::len)
    }

    /// Whether group `g` is trained: it has members, and more than `batch`
    /// of them when `freeze_small` (the authors' balance rule).
    pub fn trains(&self, g: usize, batch: usize, freeze_small: bool) -> bool {
        let n = self.len(g);
        n > 0 && !(freeze_small && n <= batch)
    }

    /// `b` members of group `g` (repeating when the group is smaller); an
    /// empty group yields point 0 (its loss is masked out by the caller).
    pub fn next(&mut self, g: usize, b: usize, rng: &mut Rng) -> Vec<usize> {
        let group = &mut self.order[g];
        if group.is_empty() {
            return vec![0; b];
        }
        let mut out = Vec::with_capacity(b);
        while out.len() < b {
            if self.pos[g] >= group.len() {
                rng.shuffle(group);
                self.pos[g] = 0;
            }
            let take = (b - out.len()).min(group.len() - self.pos[g]);
            out.extend_from_slice(&group[self.pos[g]..self.pos[g] + take]);
            self.pos[g] += take;
        }
        out
    }
}

/// Steps of one VAE epoch when the k VAEs together should see about `n`
/// points: `ceil(n / (k · batch))` steps of `batch` points per VAE.
pub fn vae_steps_per_epoch(n: usize, k: usize, batch: usize) -> usize {
    n.div_ceil(k * batch).max(1)
}

/// The groups the VAEs train on: everyone's points for every VAE (the full
/// pretraining), or each VAE's own.
pub fn training_groups(assignment: &[usize], k: usize, all: bool) -> Vec<Vec<usize>> {
    if all {
        vec![(0..assignment.len()).collect(); k]
    } else {
        members(assignment, k)
    }
}
