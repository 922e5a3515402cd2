//! Checkpoint names that say what a tensor is, not which thread computes it.
//!
//! The experts are stored in groups for the two cores of a step
//! ([`super::nets::EXPERT_GROUPS`]): `experts.<g>.encoder.fc0.weight` holds
//! the first encoder layer of every expert of group `g`, stacked on its
//! first axis. A checkpoint stores each expert's slice on its own, as
//! `expert<e>.encoder.fc0.weight` (`e` the expert's index among all K), and
//! the optimizer's moments the same way (`adam.m.expert<e>.…`), so a
//! checkpoint does not change if the grouping does.

use std::collections::HashMap;

use anyhow::{bail, Context};
use candle_core::Tensor;

use super::nets::expert_group;

/// `(prefix, group, rest)` of a grouped name such as
/// `adam.m.experts.1.decoder.fc0.bias` → `("adam.m.", 1, "decoder.fc0.bias")`.
fn grouped(name: &str) -> Option<(&str, usize, &str)> {
    let at = name.find("experts.")?;
    let (prefix, tail) = name.split_at(at);
    let tail = &tail["experts.".len()..];
    let dot = tail.find('.')?;
    let group = tail[..dot].parse().ok()?;
    Some((prefix, group, &tail[dot + 1..]))
}

/// The name of expert `e`'s slice of a grouped tensor.
fn expert_name(prefix: &str, e: usize, rest: &str) -> String {
    format!("{prefix}expert{e}.{rest}")
}

/// Splits every grouped tensor of `k` experts into one tensor per expert
/// (its slice of the first axis, without the axis when it is one long).
pub fn split_groups(
    tensors: HashMap<String, Tensor>,
    k: usize,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        let Some((prefix, g, rest)) = grouped(&name) else {
            out.insert(name, t);
            continue;
        };
        let (first, count) = expert_group(k, g);
        let rows = t.dim(0)?;
        if count == 0 || !rows.is_multiple_of(count) {
            bail!("{name}: {rows} rows do not split into {count} experts");
        }
        let per = rows / count;
        for j in 0..count {
            let mut slice = t.narrow(0, j * per, per)?;
            if per == 1 {
                slice = slice.squeeze(0)?;
            }
            out.insert(expert_name(prefix, first + j, rest), slice.contiguous()?);
        }
    }
    Ok(out)
}

/// The grouped tensor `name` (of shape `dims`) rebuilt from the per-expert
/// tensors of a checkpoint; `None` if `name` is not grouped.
pub fn join_group(
    from: &HashMap<String, Tensor>,
    name: &str,
    dims: &[usize],
    k: usize,
) -> anyhow::Result<Option<Tensor>> {
    let Some((prefix, g, rest)) = grouped(name) else {
        return Ok(None);
    };
    let (first, count) = expert_group(k, g);
    let rows = dims.first().copied().unwrap_or(0);
    if count == 0 || !rows.is_multiple_of(count) {
        bail!("{name}: {rows} rows do not split into {count} experts");
    }
    let mut slice_dims = dims.to_vec();
    slice_dims[0] = rows / count;
    let parts = (first..first + count)
        .map(|e| {
            let key = expert_name(prefix, e, rest);
            let t = from
                .get(&key)
                .with_context(|| format!("checkpoint lacks tensor {key}"))?;
            if t.elem_count() != slice_dims.iter().product::<usize>() {
                bail!(
                    "tensor {key} has shape {:?}, the model needs {:?}",
                    t.dims(),
                    slice_dims
                );
            }
            Ok(t.reshape(slice_dims.as_slice())?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Tensor::cat(&parts, 0)?))
}

/// Checkpoint tensors with every grouped tensor rebuilt under its grouped
/// name (the names [`crate::nn::params::Params`] and the optimizer use),
/// for the grouped names and shapes in `wanted`.
pub fn join_groups(
    from: &HashMap<String, Tensor>,
    wanted: &[(String, Vec<usize>)],
    k: usize,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let mut out = from.clone();
    for (name, dims) in wanted {
        if let Some(t) = join_group(from, name, dims, k)? {
            out.insert(name.clone(), t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names_say_which_expert() {
        assert_eq!(
            grouped("adam.m.experts.1.decoder.fc0.bias"),
            Some(("adam.m.", 1, "decoder.fc0.bias"))
        );
        assert_eq!(grouped("gate.fc0.weight"), None);
    }

    #[test]
    fn split_then_join_gives_the_same_bits() {
        let k = 5; // groups of 2 and 3 experts
        let dev = Device::Cpu;
        let (first, count) = expert_group(k, 1);
        assert_eq!((first, count), (2, 3));
        let w = Tensor::arange(0f32, (count * 4 * 6) as f32, &dev)
            .unwrap()
            .reshape((count * 4, 6))
            .unwrap();
        let b = Tensor::arange(0f32, (count * 7) as f32, &dev)
            .unwrap()
            .reshape((count, 1, 7))
            .unwrap();
        let mut t = HashMap::new();
        t.insert("experts.1.encoder.fc0.weight".to_string(), w.clone());
        t.insert("adam.v.experts.1.decoder.fc1.bias".to_string(), b.clone());
        t.insert("gate.logits.bias".to_string(), b.clone());
        let split = split_groups(t, k).unwrap();
        assert_eq!(split["expert2.encoder.fc0.weight"].dims(), &[4, 6]);
        assert_eq!(split["expert4.encoder.fc0.weight"].dims(), &[4, 6]);
        assert_eq!(split["adam.v.expert3.decoder.fc1.bias"].dims(), &[1, 7]);
        assert!(split.contains_key("gate.logits.bias"));
        assert!(!split.keys().any(|n| n.contains("experts.")));
        let wanted = vec![
            (
                "experts.1.encoder.fc0.weight".to_string(),
                w.dims().to_vec(),
            ),
            (
                "adam.v.experts.1.decoder.fc1.bias".to_string(),
                b.dims().to_vec(),
            ),
        ];
        let joined = join_groups(&split, &wanted, k).unwrap();
        let same = |a: &Tensor, b: &Tensor| {
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert!(same(&joined["experts.1.encoder.fc0.weight"], &w));
        assert!(same(&joined["adam.v.experts.1.decoder.fc1.bias"], &b));
        // A missing expert is named.
        let mut lacking = split.clone();
        lacking.remove("expert3.encoder.fc0.weight");
        let e = join_groups(&lacking, &wanted, k).unwrap_err();
        assert!(format!("{e}").contains("expert3.encoder.fc0.weight"), "{e}");
    }
}
