//! The end of a run: export, engine check, loss curve and `report.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::method::{Method, MethodConfig};
use super::trainer::Trainer;
use crate::eval::metrics::evaluate;
use crate::export::quantize::{compare, encode, table, WeightType};
use crate::export::{label_map, write_bytes};
use crate::util::write_atomic;

/// Exports the model (`model.bin` with f16 weights and `model-int8.bin` in
/// the run directory, plus `export` with `weights` if given), scores the
/// f32 model and both files on the test set, and writes `loss.png` and
/// `report.md`. Returns the path of the run directory's `model.bin`.
pub fn finish<M: Method>(
    trainer: &Trainer<M>,
    seconds: f64,
    export: Option<&Path>,
    weight_type: WeightType,
    novelty: bool,
) -> anyhow::Result<PathBuf> {
    let cfg = &trainer.cfg;
    let method = &trainer.method;
    let data = &trainer.data;
    let k = method.experts();
    let (train, test) = (&data.train, &data.test);
    let (width, height) = data.size();
    // Labels are used from here on only: to name clusters and to score.
    let train_pred = method
        .predict(&train.pixels, train.n)?
        .context("the method ended without a classifier")?;
    let train_sizes = cluster_sizes(&train_pred, k);
    let train_eval = train.labels.as_ref().map(|l| evaluate(&train_pred, l, k));
    let mut spec = method.to_spec(&train_sizes, train_eval.as_ref().map(label_map))?;
    let fitted = if novelty {
        if trainer.verbose {
            eprintln!("novelty score: fitting on {} training images", train.n);
        }
        let fitted = crate::export::novelty::fit(&spec, &train.pixels, train.n)?;
        spec.novelty = Some(fitted.spec.clone());
        Some(fitted)
    } else {
        None
    };
    let path = trainer.run_dir.join("model.bin");
    let bytes = encode(&spec, WeightType::F16, &[])?;
    let int8 = encode(&spec, WeightType::Int8, &train.pixels)?;
    write_bytes(&bytes, &path)?;
    write_bytes(&int8, &trainer.run_dir.join("model-int8.bin"))?;
    if let Some(e) = export {
        let chosen = match weight_type {
            WeightType::F16 => &bytes,
            WeightType::Int8 => &int8,
        };
        write_bytes(chosen, e)?;
    }
    let f32_pred = method
        .predict(&test.pixels, test.n)?
        .context("the method ended without a classifier")?;
    let test_labels = test.labels.as_deref();
    let f32_eval = test_labels.map(|l| evaluate(&f32_pred, l, k));
    let variants = compare(
        &spec,
        &[("f16", &bytes), ("int8", &int8)],
        &test.pixels,
        test_labels,
        test.n,
    )?;
    // The engine on model.bin: `compare` ran it on the test set already.
    let f16 = variants
        .iter()
        .find(|v| v.name == "f16")
        .context("the comparison lacks the f16 file")?;
    let engine_eval = f16.eval.as_ref();
    let agree = f32_pred
        .iter()
        .zip(&f16.pred)
        .filter(|(a, b)| a == b)
        .count() as f64
        / f32_pred.len().max(1) as f64;
    let model = crate::eval::host::parse(&bytes, "exported model")?;
    trainer.save_loss_curve()?;
    let most_styles = (0..k).map(|c| model.styles(c)).max().unwrap_or(1);
    let (tiles, title) = if most_styles > 1 {
        let rows = (8 / most_styles).max(2);
        (
            crate::eval::host::style_tiles(&model, rows, cfg.seed())?,
            format!("Engine samples from model.bin, one column per cluster; {rows} rows per style, style 0 on top"),
        )
    } else {
        (
            crate::eval::host::sample_tiles(&model, 8, cfg.seed())?,
            "Engine samples from model.bin, one column per cluster".to_string(),
        )
    };
    let label_map = model.header().label_map.as_deref();
    crate::eval::pictures::save_labelled_grid(
        &trainer.run_dir.join("samples.png"),
        &title,
        &tiles,
        k,
        (width, height),
        &crate::eval::pictures::cluster_headers(k, label_map, data.class_names.as_deref()),
    )?;
    if let Some(ev) = engine_eval {
        crate::eval::pictures::save_confusion(
            &trainer.run_dir.join("confusion.png"),
            "Confusion matrix: test set, engine on model.bin",
            ev,
            label_map,
            data.class_names.as_deref(),
        )?;
    }

    let no_labels = "no labels: clusters cannot be scored (give a labelled set to score them)";
    let score = |e: Option<&crate::eval::metrics::Evaluation>| {
        e.map_or_else(|| no_labels.to_string(), |e| e.summary())
    };
    let mut r = String::new();
    let _ = writeln!(r, "# Training report\n");
    let _ = writeln!(
        r,
        "- {}, {} training images of {width}x{height}, {} epochs, {:.1} s of training (this invocation)",
        cfg.describe(),
        train.n,
        method.epochs(),
        seconds
    );
    let _ = writeln!(r, "- training images: {}", data.train_source);
    let _ = writeln!(r, "- test images ({}): {}", test.n, data.test_source);
    let _ = writeln!(
        r,
        "- model.bin: {} bytes ({:.3} MiB)",
        bytes.len(),
        bytes.len() as f64 / 1048576.0
    );
    let _ = writeln!(
        r,
        "- test set, f32 model (classifier argmax): {}",
        score(f32_eval.as_ref())
    );
    let _ = writeln!(
        r,
        "- test set, engine on model.bin (f16): {}",
        score(engine_eval)
    );
    let _ = writeln!(
        r,
        "- engine and f32 model agree on {:.2}% of test images",
        100.0 * agree
    );
    let _ = writeln!(
        r,
        "- training set (classifier argmax): {}",
        score(train_eval.as_ref())
    );
    let notes = method.report_notes(data, &trainer.run_dir, label_map)?;
    r.push_str(&notes);
    if let Some(fitted) = &fitted {
        r.push_str(&crate::export::novelty::report(
            fitted,
            &spec,
            &test.pixels,
            test.n,
            &[
                ("model.bin (f16)", &bytes),
                ("model-int8.bin (int8)", &int8),
            ],
        )?);
    }
    let _ = writeln!(
        r,
        "\n## Cluster sizes (training set, f32 classifier)\n\n| cluster | images | share |\n|---:|---:|---:|"
    );
    for (c, &size) in train_sizes.iter().enumerate() {
        let _ = writeln!(
            r,
            "| {c} | {size} | {:.1}% |",
            100.0 * size as f64 / train.n.max(1) as f64
        );
    }
    let _ = writeln!(
        r,
        "\n## Weights: f32 (the trained model), f16 (`model.bin`), int8 (`model-int8.bin`)\n\nTest set; argmax agreement with the f32 model (a plain f32 forward pass of the exported weights); generated images of {} seeds per expert compared pixel by pixel with the f32 decoders' (intensities in [0, 1]). int8 was calibrated on the first {} training images (no labels).\n\n{}",
        32,
        crate::export::quantize::CALIBRATION_IMAGES,
        table(&variants, most_styles > 1)
    );
    match (&train_eval, engine_eval) {
        (Some(_), Some(engine_eval)) => {
            let _ = writeln!(r, "\nLabels were used only after training: to score clusters and to write the cluster-to-label map (Hungarian matching on the training set).\n");
            if let Some(names) = &data.class_names {
                let _ = writeln!(
                    r,
                    "Label classes (sub-folder names): {}\n",
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| format!("{i} = {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(
                r,
                "## Confusion matrix (test set, engine)\n\n![confusion matrix: rows are the true labels, columns the clusters with their labels](confusion.png)\n\n{}",
                engine_eval.confusion_table()
            );
        }
        _ => {
            let _ = writeln!(r, "\nThe training or the test images have no labels: nothing is scored and model.bin has no label map (`harness classify` prints an empty `label`). The cluster sizes, the sample grids and the loss curve describe the model.\n");
        }
    }
    let _ = writeln!(r, "## Files\n\n- `config.json`, `data.json`: the run's configuration and what it read\n- `metrics.jsonl`: one line per epoch\n- `samples/epoch-NNN.png`: decoder samples after each epoch (column = expert, headed `cluster c`)\n- `samples.png`: engine samples from model.bin (column = cluster, headed `cluster c → digit d` when labels named the clusters)\n- `confusion.png`: the confusion matrix above as a picture (rows = true label, columns = cluster with its label, counts in the cells, colour = share of the row), when the test set has labels\n- `model.bin`, `model-int8.bin`: the model with f16 and int8 weights\n- `loss.png`: the loss per epoch (step trace pale, epoch mean, each named term), smaller terms and the test ACC/NMI/ARI in panels below\n- `checkpoint.safetensors`, `state.json`: resume with `trainer fit --resume <this dir>`\n");
    write_atomic(&trainer.run_dir.join("report.md"), r.as_bytes())?;
    if trainer.verbose {
        println!("test (engine, f16): {}", score(engine_eval));
        if let Some(first) = notes.lines().next() {
            println!("{}", first.trim_start_matches("- "));
        }
        println!(
            "engine agrees with the f32 model on {:.2}% of test images",
            100.0 * agree
        );
        print!("{}", table(&variants, most_styles > 1));
        println!(
            "wrote {} ({} bytes), model-int8.bin ({} bytes){}",
            path.display(),
            bytes.len(),
            int8.len(),
            export
                .map(|e| format!(" and {} ({})", e.display(), weight_type.name()))
                .unwrap_or_default()
        );
        println!("report: {}", trainer.run_dir.join("report.md").display());
    }
    Ok(path)
}

/// Images per cluster.
fn cluster_sizes(pred: &[usize], k: usize) -> Vec<usize> {
    let mut sizes = vec![0; k];
    for &c in pred {
        if let Some(s) = sizes.get_mut(c) {
            *s += 1;
        }
    }
    sizes
}
