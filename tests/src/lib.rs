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
    /// Chosen style within the cluster (0 for a flat model).
    pub style: usize,
    /// Probability of the chosen style within the cluster (1 for a flat
    /// model or a cluster of one style).
    pub style_confidence: f32,
    /// The novelty score and its verdict, if the model carries a novelty
    /// section (`engine/FORMAT.md`, *Novelty*); `None` otherwise.
    pub novelty: Option<NoveltyCell>,
}

/// What the `novelty` and `known` columns show: [`engine::Novelty`]'s
/// `score` (in threshold units: 1 = at the threshold) and `known`
/// (`score <= 1`), the two values the device protocol carries too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoveltyCell {
    /// How unlike the model's training images the input is.
    pub score: f32,
    /// Whether the score is within the threshold.
    pub known: bool,
}

impl From<engine::Novelty> for NoveltyCell {
    fn from(n: engine::Novelty) -> Self {
        NoveltyCell {
            score: n.score,
            known: n.known,
        }
    }
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
            style: c.style,
            style_confidence: c.style_confidence(),
            novelty: c.novelty.map(NoveltyCell::from),
        })
        .collect())
}

/// The CSV `classify` prints: a header, then
/// `index,cluster,label,confidence,style,style_confidence,novelty,known`
/// for every row (`style` is the chosen style within the cluster, 0 for a
/// flat model; `style_confidence` its probability, 1 for a flat model;
/// `novelty` the novelty score in threshold units and `known` `true` or
/// `false`, both empty for a model without a novelty section). With
/// `bits`, `probability_bits` (the K probabilities' f32 bits in hex,
/// space-separated) comes after `confidence`, where it always was,
/// `style_confidence_bits` (the style confidence's f32 bits) after
/// `style_confidence` and `novelty_bits` (the score's f32 bits, empty
/// without a section) ends the row:
/// `index,cluster,label,confidence,probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits`.
/// Columns of later versions come after those of earlier ones, which keep
/// their positions.
pub fn rows_to_csv(rows: &[Row], bits: bool) -> String {
    let mut out = String::from("index,cluster,label,confidence");
    out.push_str(if bits {
        ",probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits\n"
    } else {
        ",style,style_confidence,novelty,known\n"
    });
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
        let _ = write!(out, ",{},{:.6}", r.style, r.style_confidence);
        if bits {
            let _ = write!(out, ",{:08x}", r.style_confidence.to_bits());
        }
        match r.novelty {
            Some(n) => {
                let _ = write!(out, ",{:.6},{}", n.score, n.known);
                if bits {
                    let _ = write!(out, ",{:08x}", n.score.to_bits());
                }
            }
            None => out.push_str(if bits { ",,," } else { ",," }),
        }
        out.push('\n');
    }
    out
}

/// `count` samples of cluster `cluster`'s style `style` as 8-bit images:
/// sample `i` is [`engine::to_pixels`] of [`Model::generate_style`] with
/// seed `seed + i` (wrapping); style 0 gives what
/// [`engine::host::generate_images`] gives. A cluster or style the model
/// does not have is a one-line error naming `path` and the valid range.
pub fn generate_style_images(
    model: &Model<'_>,
    path: &Path,
    (cluster, style): (usize, usize),
    count: usize,
    seed: u64,
) -> Result<Vec<Vec<u8>>> {
    let (experts, styles) = (model.experts(), model.styles(cluster));
    if cluster >= experts {
        anyhow::bail!(
            "{}: no expert {cluster}: the model has {experts} experts (0-{})",
            path.display(),
            experts - 1
        );
    }
    if style >= styles {
        let range = match styles {
            1 => "style 0 only".to_string(),
            n => format!("styles 0-{}", n - 1),
        };
        anyhow::bail!(
            "{}: no style {style} in expert {cluster}: it has {range}",
            path.display()
        );
    }
    let mut ws = engine::host::workspace();
    (0..count)
        .map(|i| {
            let values =
                model.generate_style(&mut ws, cluster, style, seed.wrapping_add(i as u64))?;
            let mut px = vec![0u8; values.len()];
            engine::to_pixels(values, &mut px);
            Ok(px)
        })
        .collect::<Result<_, engine::Error>>()
        .with_context(|| path.display().to_string())
}

/// A model's description, as `harness inspect` prints it:
/// [`trainer::eval::host::describe`] (for a two-level model, format
/// version 3, the header lines, then the tree: the gate, and per cluster
/// its label, weight and number of styles, its style gate's shape and
/// bytes, and each style's weight and decoder), and whether it has a
/// novelty score (its units, encoding and doubt threshold).
pub fn describe(model: &Model<'_>, bytes: usize) -> String {
    trainer::eval::host::describe(model, bytes)
}

/// Writes the samples of one expert as a PNG grid under a title that names
/// the expert, the digit its label map gives it, the style (`Some` for a
/// two-level model only) and the seeds (`expert 2 → digit 7 · seeds 5–13`,
/// `expert 2 → digit 7 · style 1 · seeds 5–13`): what `harness generate`
/// writes, on the host or from a board, so that the two pictures are the
/// same bytes.
pub fn save_expert_grid(
    out: &Path,
    images: &[Vec<u8>],
    (width, height): (usize, usize),
    (expert, style): (usize, Option<usize>),
    seed: u64,
    label_map: Option<&[u8]>,
) -> Result<()> {
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    let mut title = format!("expert {expert}");
    if let Some(&digit) = label_map.and_then(|m| m.get(expert)) {
        let _ = write!(title, " → digit {digit}");
    }
    if let Some(style) = style {
        let _ = write!(title, " · style {style}");
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
