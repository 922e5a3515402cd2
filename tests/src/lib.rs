//! Host-side harness for `model.bin` files: classify IDX images, generate
//! sample grids and describe a model, all through the no_std engine exactly
//! as a microcontroller runs it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use engine::{Model, Workspace};

/// Workspace size used on the host: every model the trainer writes fits.
pub const HOST_WIDTH: usize = 1024;

/// A boxed workspace (8 KiB is fine on a host stack, but keep it off anyway).
pub type HostWorkspace = Box<Workspace<HOST_WIDTH>>;

/// A fresh host workspace.
pub fn workspace() -> HostWorkspace {
    Box::new(Workspace::new())
}

/// Reads a model file into memory, with the path in any error.
pub fn read_model_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))
}

/// Parses model bytes, naming the file in the error.
pub fn parse_model<'a>(bytes: &'a [u8], path: &Path) -> Result<Model<'a>> {
    let model = Model::from_bytes(bytes).with_context(|| format!("{}", path.display()))?;
    if model.workspace_len() > HOST_WIDTH {
        anyhow::bail!(
            "{}: model needs a workspace of {} values, the harness has {HOST_WIDTH}",
            path.display(),
            model.workspace_len()
        );
    }
    Ok(model)
}

/// One classified image.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index of the image in the file.
    pub index: usize,
    /// Chosen expert.
    pub cluster: usize,
    /// Digit label of the cluster, when the model has a label map.
    pub label: Option<u8>,
    /// Gate probability of the chosen expert.
    pub confidence: f32,
}

/// Classifies every image of a stack with the engine.
pub fn classify_all(model: &Model<'_>, images: &trainer::data::Images) -> Result<Vec<Row>> {
    if images.pixels_per_image() != model.pixels() {
        anyhow::bail!(
            "images are {}x{} = {} pixels, the model expects {}",
            images.rows,
            images.cols,
            images.pixels_per_image(),
            model.pixels()
        );
    }
    let mut ws = workspace();
    (0..images.n)
        .map(|index| {
            let c = model.classify(&mut ws, images.image(index))?;
            Ok(Row {
                index,
                cluster: c.cluster,
                label: c.label,
                confidence: c.confidence(),
            })
        })
        .collect()
}

/// The CSV `classify` prints: a header, then `index,cluster,label,confidence`.
pub fn rows_to_csv(rows: &[Row]) -> String {
    let mut out = String::from("index,cluster,label,confidence\n");
    for r in rows {
        let label = r.label.map(|l| l.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{:.6}",
            r.index, r.cluster, label, r.confidence
        );
    }
    out
}

/// `count` samples of one expert, sample `i` drawn with seed `seed + i`,
/// as 8-bit images.
pub fn generate_images(
    model: &Model<'_>,
    expert: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Vec<u8>>> {
    let mut ws = workspace();
    (0..count)
        .map(|i| {
            let values = model.generate(&mut ws, expert, seed.wrapping_add(i as u64))?;
            let mut px = vec![0u8; values.len()];
            engine::to_pixels(values, &mut px);
            Ok(px)
        })
        .collect()
}
