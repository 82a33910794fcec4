//! Walk-forward evaluation: fit on earlier candidates, predict later ones, and report only those
//! out-of-sample predictions. Each fold's training set ends where the test fold starts, minus an embargo:
//! a training candidate whose outcome was still running at the fold's first candidate is dropped, so no
//! label peeks into the test period.

use super::detector::{DetectorParams, ReversalDetector, Triggers};
use super::features::{Features, features};
use super::model::{ModelError, TrainingOptions, stage1_rate, stage1_rates, train};
use super::outcome::label;
use crate::Bar;
use domain::Side;
use serde::Serialize;

/// One labelled candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Signal bar open time (Unix seconds).
    pub time: i64,
    /// When its outcome was known (Unix seconds).
    pub exit_time: i64,
    pub side: Side,
    pub triggers: Triggers,
    pub features: Features,
    pub win: bool,
    pub r: f64,
}

/// Runs stage 1 over a series and labels every candidate whose outcome is known.
pub fn collect_samples(bars: &[Bar], params: DetectorParams, horizon: usize, bar_seconds: i64) -> Vec<Sample> {
    let mut detector = ReversalDetector::new(params);
    let mut samples = Vec::new();
    for (i, bar) in bars.iter().enumerate() {
        if let Some(c) = detector.update(bar)
            && let Some(o) = label(&c, bars, i, horizon)
        {
            samples.push(Sample {
                time: c.time,
                exit_time: bars[i + o.bars].time + bar_seconds,
                side: c.side,
                triggers: c.triggers,
                features: features(&c),
                win: o.win,
                r: o.r,
            });
        }
    }
    samples
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationBin {
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_win_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// `None` for the baseline (every stage-1 candidate).
    pub threshold: Option<f64>,
    pub trades: usize,
    pub win_rate: f64,
    pub mean_r: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    pub folds: usize,
    pub candidates: usize,
    pub out_of_sample: usize,
    pub base_rate: f64,
    /// Stage 2's AUC; 0.5 is no skill.
    pub auc: f64,
    /// AUC of the stage-1 rates alone, for comparison.
    pub stage1_auc: f64,
    pub brier: f64,
    /// Brier score of always predicting the training base rate.
    pub brier_baseline: f64,
    pub calibration: Vec<CalibrationBin>,
    pub baseline: Selection,
    pub thresholds: Vec<Selection>,
}

/// Area under the ROC curve by the rank-sum formula, ties counted half.
pub fn auc(scores: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = scores.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let mid_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += mid_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let pos = sorted.iter().filter(|s| s.1).count() as f64;
    let neg = sorted.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn select(predictions: &[(f64, &Sample)], threshold: Option<f64>) -> Selection {
    let chosen: Vec<&Sample> =
        predictions.iter().filter(|(p, _)| threshold.is_none_or(|t| *p >= t)).map(|(_, s)| *s).collect();
    let n = chosen.len();
    let ratio = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    Selection {
        threshold,
        trades: n,
        win_rate: ratio(chosen.iter().filter(|s| s.win).count() as f64),
        mean_r: ratio(chosen.iter().map(|s| s.r).sum()),
    }
}

/// Walk-forward evaluation over `samples` (any order): the first `initial_fraction` is only ever training
/// data, the rest is cut into `folds` consecutive test folds.
pub fn walk_forward(
    samples: &[Sample],
    folds: usize,
    initial_fraction: f64,
    detector: DetectorParams,
    options: TrainingOptions,
) -> Result<EvaluationReport, ModelError> {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.time);
    let start = ((sorted.len() as f64) * initial_fraction) as usize;
    let folds = folds.max(1);
    let fold_len = (sorted.len() - start).div_ceil(folds);
    if fold_len == 0 {
        return Err(ModelError::Training("no candidates left to test on".into()));
    }
    let mut predictions: Vec<(f64, f64, &Sample)> = Vec::new();
    let mut base_rates = Vec::new();
    for k in 0..folds {
        let (lo, hi) = (start + k * fold_len, (start + (k + 1) * fold_len).min(sorted.len()));
        if lo >= hi {
            break;
        }
        let cutoff = sorted[lo].time;
        let training: Vec<Sample> = sorted[..lo].iter().filter(|s| s.exit_time <= cutoff).copied().collect();
        let model = train(&training, detector, options, format!("fold-{k}"), Vec::new())?;
        let rates = stage1_rates(&training);
        base_rates.push(model.base_rate);
        for s in &sorted[lo..hi] {
            let p1 = stage1_rate(&rates, model.base_rate, s.side, s.triggers);
            predictions.push((model.predict(&s.features), p1, s));
        }
    }
    let n = predictions.len() as f64;
    let brier = predictions.iter().map(|(p, _, s)| (p - f64::from(u8::from(s.win))).powi(2)).sum::<f64>() / n;
    // The constant forecast each fold could have made: its training base rate.
    let mut brier_baseline = 0.0;
    for (k, chunk) in predictions.chunks(fold_len).enumerate() {
        let rate = base_rates.get(k).copied().unwrap_or(0.5);
        brier_baseline += chunk.iter().map(|(_, _, s)| (rate - f64::from(u8::from(s.win))).powi(2)).sum::<f64>();
    }
    brier_baseline /= n;

    let mut by_p2: Vec<(f64, &Sample)> = predictions.iter().map(|(p, _, s)| (*p, *s)).collect();
    by_p2.sort_by(|a, b| a.0.total_cmp(&b.0));
    let calibration = (0..10)
        .filter_map(|d| {
            let (lo, hi) = (d * by_p2.len() / 10, (d + 1) * by_p2.len() / 10);
            let bin = &by_p2[lo..hi];
            (!bin.is_empty()).then(|| CalibrationBin {
                count: bin.len(),
                mean_predicted: bin.iter().map(|b| b.0).sum::<f64>() / bin.len() as f64,
                observed_win_rate: bin.iter().filter(|b| b.1.win).count() as f64 / bin.len() as f64,
            })
        })
        .collect();
    Ok(EvaluationReport {
        folds,
        candidates: samples.len(),
        out_of_sample: predictions.len(),
        base_rate: predictions.iter().filter(|p| p.2.win).count() as f64 / n,
        auc: auc(&predictions.iter().map(|(p, _, s)| (*p, s.win)).collect::<Vec<_>>()),
        stage1_auc: auc(&predictions.iter().map(|(_, p1, s)| (*p1, s.win)).collect::<Vec<_>>()),
        brier,
        brier_baseline,
        calibration,
        baseline: select(&by_p2, None),
        thresholds: [0.35, 0.5, 0.6, 0.7].into_iter().map(|t| select(&by_p2, Some(t))).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::auc;

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        let perfect = [(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(auc(&perfect), 1.0);
        let inverted = [(0.9, false), (0.8, false), (0.2, true), (0.1, true)];
        assert_eq!(auc(&inverted), 0.0);
        let tied = [(0.5, false), (0.5, true)];
        assert_eq!(auc(&tied), 0.5);
    }
}
