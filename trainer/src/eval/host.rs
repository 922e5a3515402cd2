//! Exported model files run through the engine on the host, as a device
//! would: [`engine::host`] does the work (one workspace capacity for every
//! host tool); these wrappers name the file in errors, for `anyhow`.

use anyhow::ensure;
use engine::Model;

/// Parses a model file with the engine, naming `what` in errors; a model
/// wider than the host workspace ([`engine::host::WORKSPACE_LEN`]) is refused.
pub fn parse<'a>(bytes: &'a [u8], what: &str) -> anyhow::Result<Model<'a>> {
    engine::host::parse(bytes).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// The engine's cluster for each of `n` images (`n * pixels` bytes).
pub fn predict(model: &Model<'_>, pixels: &[u8], n: usize) -> anyhow::Result<Vec<usize>> {
    let p = model.pixels();
    ensure!(
        pixels.len() == n * p,
        "{} bytes for {n} images of {p} pixels",
        pixels.len()
    );
    Ok(engine::host::predict(model, pixels)?)
}

/// The engine's `(cluster, style)` for each of `n` images.
pub fn classify(model: &Model<'_>, pixels: &[u8], n: usize) -> anyhow::Result<Vec<(usize, usize)>> {
    let p = model.pixels();
    ensure!(
        pixels.len() == n * p,
        "{} bytes for {n} images of {p} pixels",
        pixels.len()
    );
    Ok(engine::host::routes(model, pixels)?)
}

/// `rows` samples from every expert (column = expert), from seeds
/// `seed + row * experts + expert`.
pub fn sample_tiles(model: &Model<'_>, rows: usize, seed: u64) -> anyhow::Result<Vec<Vec<f32>>> {
    Ok(engine::host::sample_tiles(model, rows, seed)?)
}

/// `rows` samples per style of every cluster: one column per cluster, its
/// styles beneath ([`engine::host::style_tiles`]).
pub fn style_tiles(model: &Model<'_>, rows: usize, seed: u64) -> anyhow::Result<Vec<Vec<f32>>> {
    Ok(engine::host::style_tiles(model, rows, seed)?)
}

/// A human-readable description of a model file.
pub fn describe(model: &Model<'_>, bytes: usize) -> String {
    use std::fmt::Write as _;
    let h = model.header();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "format version {}, {} bytes ({:.3} MiB)",
        model.repr().version(),
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
            .map(|&w| round3(w))
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
    let repr = model.repr();
    if repr.is_two_level() {
        tree(model, &mut s);
    } else {
        let _ = writeln!(s, "gate: {}", network_line(model.gate()));
        for e in 0..model.experts() {
            if let Ok(d) = model.decoder(e) {
                let _ = writeln!(s, "decoder {e}: {}", network_line(d));
            }
        }
    }
    let _ = writeln!(s, "{}", novelty_line(model));
    let _ = writeln!(
        s,
        "parameters {}, {} weights, RAM needed {} bytes (workspace {} slots per buffer)",
        model.parameters(),
        model.element_type().name(),
        model.ram_bytes(),
        model.workspace_len()
    );
    s
}

/// What the model's novelty section holds, or that it has none.
fn novelty_line(model: &Model<'_>) -> String {
    match model.repr().novelty() {
        None => "novelty score: none (this file has no novelty section)".into(),
        Some(n) => format!("novelty score: {n}"),
    }
}

/// A two-level model's networks as a tree: the gate, then per cluster its
/// label, weight and styles, its style gate, and each style's weight and
/// decoder.
fn tree(model: &Model<'_>, s: &mut String) {
    use std::fmt::Write as _;
    let (h, repr) = (model.header(), model.repr());
    let _ = writeln!(s, "gate: {}", network_line(model.gate()));
    let total: usize = (0..model.experts()).map(|c| model.styles(c)).sum();
    let _ = writeln!(
        s,
        "tree: {} clusters, {total} styles (cluster → style → decoder)",
        model.experts()
    );
    for c in 0..model.experts() {
        let label = match h.label_map.as_deref().and_then(|m| m.get(c)) {
            Some(d) => format!(" → digit {d}"),
            None => String::new(),
        };
        let weight = h.mixture_weights.get(c).copied().unwrap_or(f32::NAN);
        let styles = model.styles(c);
        let _ = writeln!(
            s,
            "cluster {c}{label}: weight {}, {styles} style{}",
            round3(weight),
            if styles == 1 { "" } else { "s" }
        );
        match repr.style_gate(c) {
            Some(g) => {
                let _ = writeln!(s, "  style gate: {}", network_line(g));
            }
            None => {
                let _ = writeln!(s, "  style gate: none (one style)");
            }
        }
        for st in 0..styles {
            let w = repr.style_weight(c, st).unwrap_or(f32::NAN);
            if let Some(d) = repr.decoder_of(c, st) {
                let _ = writeln!(
                    s,
                    "  style {st}: weight {}, decoder: {}",
                    round3(w),
                    network_line(d)
                );
            }
        }
    }
}

/// `w` rounded to 3 decimals, as the description prints weights.
fn round3(w: f32) -> f32 {
    (w * 1000.0).round() / 1000.0
}

/// One network: its layers' shapes, activations and element types, then
/// its parameters and bytes of tensors.
fn network_line(net: engine::Network<'_>) -> String {
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
    format!(
        "{} ({} parameters, {} bytes of tensors)",
        shape.join(", "),
        net.parameters(),
        net.tensor_bytes()
    )
}
