//! Running an exported `model.bin` through the engine, as a device would.

use anyhow::bail;
use engine::{Model, Workspace};

/// Widest layer the host-side workspace holds.
pub const WORKSPACE: usize = 4096;

/// Parses a model file with the engine, naming `what` in errors.
pub fn parse<'a>(bytes: &'a [u8], what: &str) -> anyhow::Result<Model<'a>> {
    let model = Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if model.workspace_len() > WORKSPACE {
        bail!(
            "{what}: layers {} wide exceed this tool's workspace of {WORKSPACE}",
            model.workspace_len()
        );
    }
    Ok(model)
}

/// The engine's cluster for each of `n` images (`n * pixels` bytes).
pub fn predict(model: &Model<'_>, pixels: &[u8], n: usize) -> anyhow::Result<Vec<usize>> {
    let p = model.pixels();
    if pixels.len() != n * p {
        bail!("{} bytes for {n} images of {p} pixels", pixels.len());
    }
    let mut ws = Box::new(Workspace::<WORKSPACE>::new());
    pixels
        .chunks_exact(p)
        .map(|img| {
            Ok(model
                .classify(&mut ws, img)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .cluster)
        })
        .collect()
}

/// `rows` samples from every expert (column = expert), from seeds
/// `seed + row * experts + expert`.
pub fn sample_tiles(model: &Model<'_>, rows: usize, seed: u64) -> anyhow::Result<Vec<Vec<f32>>> {
    let k = model.experts();
    let mut ws = Box::new(Workspace::<WORKSPACE>::new());
    let mut tiles = Vec::with_capacity(rows * k);
    for r in 0..rows {
        for e in 0..k {
            let s = seed.wrapping_add((r * k + e) as u64);
            let img = model
                .generate(&mut ws, e, s)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tiles.push(img.to_vec());
        }
    }
    Ok(tiles)
}

/// A human-readable description of a model file.
pub fn describe(model: &Model<'_>, bytes: usize) -> String {
    use std::fmt::Write as _;
    let h = model.header();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "format version {}, {} bytes ({:.3} MiB)",
        engine::FORMAT_VERSION,
        bytes,
        bytes as f64 / 1048576.0
    );
    let _ = writeln!(
        s,
        "method {:?}, image {}x{}, experts {}, latent {}, likelihood {:?}",
        h.method, h.image.width, h.image.height, h.experts, h.latent, h.likelihood
    );
    let _ = writeln!(
        s,
        "mixture weights {:?}",
        h.mixture_weights
            .iter()
            .map(|w| (w * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    match &h.label_map {
        Some(m) => {
            let _ = writeln!(s, "label map (cluster -> digit) {:?}", m.as_slice());
        }
        None => {
            let _ = writeln!(s, "label map: none");
        }
    }
    let _ = writeln!(s, "provenance: {}", h.provenance);
    let mut params = 0usize;
    let mut line = |name: String, net: engine::Network<'_>, s: &mut String| {
        let shape: Vec<String> = net
            .layers()
            .map(|l| {
                let layout = match l.weights {
                    engine::LayerWeights::Int8(q) if q.layout == engine::Layout::ColumnMajor => {
                        " by columns"
                    }
                    _ => "",
                };
                format!(
                    "{}->{} {:?} {}{layout}",
                    l.inputs,
                    l.outputs,
                    l.activation,
                    l.element_type().name()
                )
            })
            .collect();
        let n = net.parameters();
        params += n;
        let _ = writeln!(
            s,
            "{name}: {} ({n} parameters, {} bytes of tensors)",
            shape.join(", "),
            net.tensor_bytes()
        );
    };
    line("gate".into(), model.gate(), &mut s);
    for e in 0..model.experts() {
        if let Ok(d) = model.decoder(e) {
            line(format!("decoder {e}"), d, &mut s);
        }
    }
    let _ = writeln!(
        s,
        "parameters {params}, {} weights, RAM needed {} bytes (workspace {} slots per buffer)",
        model.element_type().name(),
        model.ram_bytes(),
        model.workspace_len()
    );
    s
}
