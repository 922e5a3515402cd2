//! `loss.png`: the run's loss per epoch, its named terms and the test
//! scores, from the loop's step trace and `metrics.jsonl`.

use std::collections::BTreeMap;
use std::path::Path;

use super::trainer::{EpochRecord, LoopState};
use crate::eval::plot::{self, Curve, Panel};

/// Terms smaller than this share of the loss get a panel of their own.
const SMALL: f64 = 0.1;

/// The records of `metrics.jsonl` by epoch (the last line of an epoch that
/// a resume repeated wins); unreadable lines are skipped, a missing file is
/// no records.
pub fn read_records(path: &Path) -> BTreeMap<usize, EpochRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<EpochRecord>(l).ok())
        .map(|r| (r.epoch, r))
        .collect()
}

/// What a term of the loss is, for the legend.
fn term_label(name: &str) -> String {
    match name {
        "elbo" => "elbo: the experts' −ELBO, weighted by the gate".to_string(),
        "recon" => "recon: its reconstruction part (−log-likelihood)".to_string(),
        "kl" => "kl: its KL part (posterior to prior)".to_string(),
        "neg_elbo" => "neg_elbo: −ELBO of the VAEs".to_string(),
        "balance" => "balance: cluster-size balancing".to_string(),
        "gate_ce" => "gate_ce: gate cross-entropy".to_string(),
        other => other.to_string(),
    }
}

/// Global step `s` on the epoch axis: epoch `e` (1-based) covers
/// `(e - 1, e]`, its steps spread evenly; `None` past the last finished
/// epoch.
fn step_to_epoch(s: u64, epoch_ends: &[(u64, f64)]) -> Option<f64> {
    let mut start = 0u64;
    for (i, &(end, _)) in epoch_ends.iter().enumerate() {
        if s <= end {
            let len = end.saturating_sub(start).max(1);
            return Some(i as f64 + s.saturating_sub(start) as f64 / len as f64);
        }
        start = end;
    }
    None
}

/// `points` (by increasing `x`) with a gap (`y` NaN) at each of `at`
/// that falls between two of them.
fn with_breaks(points: &[(f64, f64)], at: &[f64]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() + at.len());
    for (i, &p) in points.iter().enumerate() {
        if let Some(&(x, _)) = i.checked_sub(1).and_then(|j| points.get(j)) {
            if let Some(&b) = at.iter().find(|&&b| x <= b && b < p.0) {
                out.push((b, f64::NAN));
            }
        }
        out.push(p);
    }
    out
}

/// The panels of `loss.png`: the loss (step trace, epoch means and the
/// terms on its scale), the terms much smaller than it, the method's
/// per-epoch measures that are fractions (kVAE's per-round purity…), and
/// the test scores when the run has labels to score with.
pub fn loss_panels(state: &LoopState, records: &BTreeMap<usize, EpochRecord>) -> Vec<Panel> {
    let done: Vec<&EpochRecord> = records
        .values()
        .filter(|r| r.epoch <= state.epoch)
        .collect();
    // Where the objective changes (its terms differ from the epoch
    // before's: pretraining to mixture, kVAE's rounds to the gate), the
    // loss lines break.
    let changes: Vec<f64> = done
        .windows(2)
        .filter(|w| !w[0].terms.keys().eq(w[1].terms.keys()))
        .map(|w| w[0].epoch as f64)
        .collect();
    let trace: Vec<(f64, f64)> = state
        .trace
        .iter()
        .filter_map(|&(s, l)| step_to_epoch(s, &state.epoch_losses).map(|x| (x, l)))
        .collect();
    let trace = with_breaks(&trace, &changes);
    let means: Vec<(f64, f64)> = state
        .epoch_losses
        .iter()
        .enumerate()
        .map(|(i, &(_, l))| ((i + 1) as f64, l))
        .collect();
    let means = with_breaks(&means, &changes);
    let scale = means
        .iter()
        .map(|p| p.1.abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut names: Vec<&str> = Vec::new();
    for r in &done {
        for k in r.terms.keys() {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    let mut big = vec![
        Curve {
            colour: Some([31, 119, 180]),
            ..Curve::new("step loss (every 10 steps)", trace).faint()
        },
        // Wider than the terms: it shows around a term that equals it.
        Curve {
            colour: Some([31, 119, 180]),
            width: 5,
            ..Curve::new("loss, epoch mean", means)
        },
    ];
    let mut small = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let points: Vec<(f64, f64)> = done
            .iter()
            .filter_map(|r| r.terms.get(*name).map(|&v| (r.epoch as f64, v)))
            .collect();
        let size = points.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
        let curve = Curve {
            colour: Some(plot::COLOURS[(i + 1) % plot::COLOURS.len()]),
            ..Curve::new(term_label(name), points)
        };
        if size < SMALL * scale {
            small.push(curve);
        } else {
            big.push(curve);
        }
    }
    let mut panels = vec![Panel::new("loss per image", big)];
    if !small.is_empty() {
        panels.push(Panel::new("smaller terms", small));
    }
    let score = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        done.iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let notes = fraction_notes(&done);
    if !notes.is_empty() {
        let mut p = Panel::new("method's measures", notes);
        p.y_range = Some((0.0, 1.02));
        panels.push(p);
    }
    let acc = score(|r| r.test_acc);
    if !acc.is_empty() {
        let mut p = Panel::new(
            "test score",
            vec![
                Curve::new("ACC (Hungarian-matched accuracy)", acc),
                Curve::new("NMI", score(|r| r.test_nmi)),
                Curve::new("ARI", score(|r| r.test_ari)),
            ],
        );
        p.y_range = Some((0.0, 1.02));
        panels.push(p);
    }
    panels
}

/// The notes a method leaves per epoch that are fractions (non-integer
/// numbers, all in `[0, 1]`: kVAE's per-round `train_purity`, `train_acc`,
/// `train_nmi`, the discriminators' accuracies, the gate's agreement), one
/// curve each, in the order they first appear. Counts and lists stay in
/// `metrics.jsonl`.
fn fraction_notes(done: &[&EpochRecord]) -> Vec<Curve> {
    let mut keys: Vec<&str> = Vec::new();
    for r in done {
        for k in r.notes.keys() {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    keys.into_iter()
        .filter_map(|k| {
            let values: Vec<&serde_json::Value> =
                done.iter().filter_map(|r| r.notes.get(k)).collect();
            let fraction = |v: &&serde_json::Value| {
                v.is_f64() && v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x))
            };
            if !values.iter().all(fraction) {
                return None;
            }
            let points = done
                .iter()
                .filter_map(|r| r.notes.get(k)?.as_f64().map(|v| (r.epoch as f64, v)))
                .collect();
            Some(Curve::new(k, points))
        })
        .collect()
}

/// Writes `loss.png` for a run: [`loss_panels`] under `title`, epochs on
/// the x axis.
pub fn save_loss_picture(
    path: &Path,
    title: &str,
    state: &LoopState,
    records: &BTreeMap<usize, EpochRecord>,
) -> anyhow::Result<()> {
    plot::panels(path, title, "epoch", &loss_panels(state, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::trainer::EpochSums;

    fn record(epoch: usize, loss: f64, acc: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            phase: "mixture".to_string(),
            loss,
            terms: [
                ("elbo".to_string(), loss - 0.01),
                ("balance".to_string(), 0.01),
            ]
            .into_iter()
            .collect(),
            samples_per_s: 1.0,
            seconds: 1.0,
            test_acc: acc,
            test_nmi: acc,
            test_ari: acc,
            test_sizes: None,
            notes: serde_json::Map::new(),
        }
    }

    fn state(epochs: usize) -> LoopState {
        LoopState {
            epoch: epochs,
            step_in_epoch: 0,
            steps: 100 * epochs as u64,
            sums: EpochSums::default(),
            trace: (1..=10 * epochs as u64)
                .map(|i| (10 * i, 200.0 / (i as f64).sqrt()))
                .collect(),
            epoch_losses: (1..=epochs as u64)
                .map(|e| (100 * e, 200.0 / (10.0 * e as f64).sqrt()))
                .collect(),
        }
    }

    #[test]
    fn steps_map_onto_epochs() {
        let ends = [(100, 0.0), (300, 0.0)];
        assert_eq!(step_to_epoch(50, &ends), Some(0.5));
        assert_eq!(step_to_epoch(100, &ends), Some(1.0));
        assert_eq!(step_to_epoch(200, &ends), Some(1.5));
        assert_eq!(step_to_epoch(301, &ends), None);
    }

    #[test]
    fn lines_break_where_the_objective_changes() {
        let b = with_breaks(&[(5.5, 1.0), (6.0, 1.0), (6.5, 2.0), (7.0, 2.0)], &[6.0]);
        assert_eq!(b.len(), 5);
        assert!(b[2].1.is_nan() && b[2].0 == 6.0);
        let mut records: BTreeMap<usize, EpochRecord> =
            (1..=3).map(|e| (e, record(e, 10.0, None))).collect();
        records.get_mut(&3).unwrap().terms = [("gate_ce".to_string(), 0.5)].into_iter().collect();
        let p = loss_panels(&state(3), &records);
        let means = &p[0].curves[1].points;
        assert_eq!(means.len(), 4, "{means:?}");
        assert!(means[2].1.is_nan());
    }

    #[test]
    fn small_terms_and_scores_get_their_own_panels() {
        let records = (1..=4)
            .map(|e| (e, record(e, 100.0 / e as f64, Some(0.5))))
            .collect();
        let p = loss_panels(&state(4), &records);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].curves.len(), 3, "trace, mean, elbo");
        assert_eq!(p[1].curves.len(), 1, "balance");
        assert_eq!(p[2].curves.len(), 3, "ACC, NMI, ARI");
    }

    #[test]
    fn fraction_notes_are_plotted_and_counts_are_not() {
        let records: BTreeMap<usize, EpochRecord> = (1..=3)
            .map(|e| {
                let mut r = record(e, 10.0, None);
                r.notes
                    .insert("train_purity".into(), (0.5 + 0.1 * e as f64).into());
                r.notes.insert("moved".into(), (100 * e).into());
                r.notes.insert("disc_loss".into(), 1.5.into());
                (e, r)
            })
            .collect();
        let p = loss_panels(&state(3), &records);
        let last = p.last().unwrap();
        assert_eq!(last.y_label, "method's measures");
        assert_eq!(last.curves.len(), 1);
        assert_eq!(last.curves[0].name, "train_purity");
        assert_eq!(last.curves[0].points.len(), 3);
    }

    #[test]
    fn loss_picture_has_a_title_and_three_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let records = (1..=3)
            .map(|e| (e, record(e, 100.0 / e as f64, Some(0.3 * e as f64))))
            .collect();
        save_loss_picture(&path, "mixture: loss", &state(3), &records).unwrap();
        let img = plot::tests::read(&path);
        assert_eq!(
            img.dimensions(),
            (
                plot::CHART_WIDTH,
                plot::TITLE_HEIGHT + 3 * plot::PANEL_HEIGHT
            )
        );
        assert!(plot::tests::varied(&img));
        assert!(plot::tests::dark_in_rows(&img, 0, plot::TITLE_HEIGHT, 30));
    }

    #[test]
    fn records_keep_the_last_line_of_an_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let lines = [
            record(1, 5.0, None),
            record(1, 4.0, None),
            record(2, 3.0, None),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
        std::fs::write(&path, lines + "\nnot json\n").unwrap();
        let r = read_records(&path);
        assert_eq!(r.len(), 2);
        assert_eq!(r[&1].loss, 4.0);
    }
}
