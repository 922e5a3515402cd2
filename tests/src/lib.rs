//! Host-side harness for `model.bin` files: classify IDX images, generate
//! sample grids and describe a model, all through the no_std engine exactly
//! as a microcontroller runs it. The workspace, the model check and the
//! batch runs are the engine's own (`engine::host`), shared with the
//! trainer and the firmware's host tool.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use engine::Model;

pub mod device;

/// Reads a model file into memory, with the path in any error.
pub fn read_model_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))
}

/// Parses model bytes with [`engine::host::parse`] (which also refuses a
/// model wider than the host workspace), naming the file in the error.
pub fn parse_model<'a>(bytes: &'a [u8], path: &Path) -> Result<Model<'a>> {
    engine::host::parse(bytes).with_context(|| format!("{}", path.display()))
}

/// How `classify --frame` prepares images of any size for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Frame {
    /// Use the images as they are (they must be the model's size).
    None,
    /// MNIST's framing into the model's size ([`trainer::data::framing`]:
    /// [`engine::frame::mnist`], the page's and the firmware's), each
    /// image's polarity settled on its own and pixels under 1/8 of full ink
    /// taken for paper, so that the grey of scanned or photographed paper
    /// does not widen the ink's box.
    Mnist,
}

/// The images at `path` in any form [`trainer::data`] reads, for a model
/// of images of `image` (a model file's, or a device's from its `info`
/// answer): their polarity settled by `invert` (the decision goes to
/// stderr), then framed to the model's size by `frame`, or refused in one
/// line when they are not its size; a directory of MNIST's files gives its
/// `part`.
pub fn read_images(
    path: &Path,
    part: trainer::data::Part,
    size: Option<(usize, usize)>,
    invert: trainer::data::Invert,
    frame: Frame,
    image: engine::ImageShape,
) -> Result<trainer::data::Images> {
    let framing = (frame == Frame::Mnist).then_some(trainer::data::framing::Framing {
        width: image.width as usize,
        height: image.height as usize,
        invert,
    });
    let opts = trainer::data::ReadOptions {
        labels: None,
        size,
        frame: framing,
    };
    let (set, polarity) = trainer::data::read_for_model(path, part, &opts, invert, image)?;
    eprintln!("{}; polarity: {polarity}", set.describe());
    Ok(set.images)
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
    /// The gate's probability of every expert.
    pub probabilities: Vec<f32>,
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
    let all = engine::host::classify_all(model, &images.pixels)?;
    Ok(all
        .into_iter()
        .enumerate()
        .map(|(index, c)| Row {
            index,
            cluster: c.cluster,
            label: c.label,
            confidence: c.confidence(),
            probabilities: c.probabilities.to_vec(),
        })
        .collect())
}

/// The CSV `classify` prints: a header, then `index,cluster,label,confidence`
/// for every row; with `bits`, a last column `probability_bits`: the
/// probabilities' f32 bits in hex, space-separated.
pub fn rows_to_csv(rows: &[Row], bits: bool) -> String {
    let mut out = String::from("index,cluster,label,confidence");
    out.push_str(if bits { ",probability_bits\n" } else { "\n" });
    for r in rows {
        let label = r.label.map(|l| l.to_string()).unwrap_or_default();
        let _ = write!(
            out,
            "{},{},{},{:.6}",
            r.index, r.cluster, label, r.confidence
        );
        if bits {
            let hex: Vec<String> = r
                .probabilities
                .iter()
                .map(|p| format!("{:08x}", p.to_bits()))
                .collect();
            let _ = write!(out, ",{}", hex.join(" "));
        }
        out.push('\n');
    }
    out
}

/// Writes the samples of one expert as a PNG grid under a title that names
/// the expert, the digit its label map gives it and the seeds
/// (`expert 2 → digit 7 · seeds 5–13`): what `harness generate` writes, on
/// the host or from a board, so that the two pictures are the same bytes.
pub fn save_expert_grid(
    out: &Path,
    images: &[Vec<u8>],
    (width, height): (usize, usize),
    expert: usize,
    seed: u64,
    label_map: Option<&[u8]>,
) -> Result<()> {
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    let mut title = format!("expert {expert}");
    if let Some(&digit) = label_map.and_then(|m| m.get(expert)) {
        let _ = write!(title, " → digit {digit}");
    }
    let last = seed.wrapping_add(images.len().saturating_sub(1) as u64);
    let _ = match images.len() {
        0 | 1 => write!(title, " · seed {seed}"),
        _ => write!(title, " · seeds {seed}–{last}"),
    };
    trainer::eval::pictures::save_labelled_grid_bytes(
        out,
        &title,
        images,
        cols,
        (width, height),
        &[],
    )
}
