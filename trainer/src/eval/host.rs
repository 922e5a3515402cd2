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
        let styles = model.styles(e);
        if styles <= 1 {
            if let Ok(d) = model.decoder(e) {
                line(format!("decoder {e}"), d, &mut s);
            }
            continue;
        }
        if let Some(g) = model.repr().style_gate(e) {
            line(format!("cluster {e}: style gate"), g, &mut s);
        }
        for st in 0..styles {
            if let Ok(d) = model.style_decoder(e, st) {
                let w = model.repr().style_weight(e, st).unwrap_or(0.0);
                line(
                    format!("cluster {e}: style {st} (weight {w:.3}) decoder"),
                    d,
                    &mut s,
                );
            }
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
