//! Stage 2: a logistic regression (fitted with `linfa-logistic`) over standardised features, estimating
//! P(take profit before stop loss within the horizon). The fitted parameters live in a versioned JSON file
//! that `serve`, `scan` and `backtest` load; inference is one dot product and a sigmoid.
//!
//! Stage 1's own probability is the smoothed historical hit rate of candidates with the same side and
//! triggers in the training data, so `stage1_prob` is a calibrated prior rather than an invented score.

use super::detector::{Candidate, DetectorParams, Triggers};
use super::evaluate::Sample;
use super::features::{FEATURE_COUNT, FEATURE_NAMES, Features};
use domain::Side;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// The file format this build reads and writes.
pub const MODEL_FORMAT: u32 = 1;

/// How much the stage-1 rate of a trigger combination leans towards the overall rate when it has few
/// examples: as if it had this many extra candidates at the overall rate.
const STAGE1_PRIOR_WEIGHT: f64 = 20.0;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {file}: {message}")]
    Corrupt { file: String, message: String },
    #[error("model file {file} has format {found}; this build reads format {MODEL_FORMAT}")]
    Format { file: String, found: u32 },
    #[error("cannot train: {0}")]
    Training(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingOptions {
    /// L2 penalty of the logistic regression.
    pub l2: f64,
    pub max_iterations: u64,
    /// Bars a candidate has to reach its take profit or stop loss.
    pub horizon: usize,
}

impl Default for TrainingOptions {
    fn default() -> Self {
        TrainingOptions { l2: 1.0, max_iterations: 200, horizon: 48 }
    }
}

/// Hit counts of one stage-1 trigger combination on one side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage1Rate {
    pub side: Side,
    pub triggers: u8,
    pub candidates: u32,
    pub wins: u32,
}

/// What the model was trained on, recorded in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingSummary {
    pub candidates: usize,
    pub wins: usize,
    pub first_time: i64,
    pub last_time: i64,
    pub series: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReversalModel {
    pub format: u32,
    pub version: String,
    pub feature_names: Vec<String>,
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub base_rate: f64,
    pub stage1_rates: Vec<Stage1Rate>,
    pub detector: DetectorParams,
    pub options: TrainingOptions,
    pub trained: TrainingSummary,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl ReversalModel {
    /// Reads a model file's text; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<ReversalModel, ModelError> {
        #[derive(Deserialize)]
        struct Header {
            format: u32,
        }
        let header: Header = serde_json::from_str(text)
            .map_err(|e| ModelError::Corrupt { file: file.to_string(), message: e.to_string() })?;
        if header.format != MODEL_FORMAT {
            return Err(ModelError::Format { file: file.to_string(), found: header.format });
        }
        let model: ReversalModel = serde_json::from_str(text)
            .map_err(|e| ModelError::Corrupt { file: file.to_string(), message: e.to_string() })?;
        model.check().map_err(|message| ModelError::Corrupt { file: file.to_string(), message })?;
        Ok(model)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model always serialises")
    }

    fn check(&self) -> Result<(), String> {
        if self.feature_names.iter().map(String::as_str).ne(FEATURE_NAMES.iter().copied()) {
            return Err(format!("its features {:?} are not the ones this build computes", self.feature_names));
        }
        for (name, v) in [("means", &self.means), ("scales", &self.scales), ("weights", &self.weights)] {
            if v.len() != FEATURE_COUNT {
                return Err(format!("{name} has {} values, expected {FEATURE_COUNT}", v.len()));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("{name} has a value that is not a finite number"));
            }
        }
        if self.scales.iter().any(|s| *s <= 0.0) {
            return Err("a feature scale is not positive".into());
        }
        if !self.intercept.is_finite() || !(0.0..=1.0).contains(&self.base_rate) {
            return Err("intercept or base rate out of range".into());
        }
        Ok(())
    }

    /// Stage 2: the calibrated probability that the candidate reaches its take profit first.
    #[inline]
    pub fn predict(&self, features: &Features) -> f64 {
        let terms = features.iter().zip(&self.weights).zip(self.means.iter().zip(&self.scales));
        // A feature the market could not define (a flat bar) counts as average.
        let z = terms
            .filter(|((x, _), _)| x.is_finite())
            .fold(self.intercept, |z, ((x, w), (mean, scale))| z + w * (x - mean) / scale);
        sigmoid(z)
    }

    /// Stage 1: the smoothed hit rate of this side and trigger combination in the training data.
    pub fn stage1_prob(&self, candidate: &Candidate) -> f64 {
        stage1_rate(&self.stage1_rates, self.base_rate, candidate.side, candidate.triggers)
    }
}

/// The smoothed hit rate of one side and trigger combination, given the counts and the overall rate.
pub(crate) fn stage1_rate(rates: &[Stage1Rate], base_rate: f64, side: Side, triggers: Triggers) -> f64 {
    match rates.iter().find(|r| r.side == side && r.triggers == triggers.0) {
        Some(r) => (r.wins as f64 + STAGE1_PRIOR_WEIGHT * base_rate) / (r.candidates as f64 + STAGE1_PRIOR_WEIGHT),
        None => base_rate,
    }
}

/// Counts of wins per side and trigger combination.
pub fn stage1_rates(samples: &[Sample]) -> Vec<Stage1Rate> {
    let mut rates: Vec<Stage1Rate> = Vec::new();
    for s in samples {
        match rates.iter_mut().find(|r| r.side == s.side && r.triggers == s.triggers.0) {
            Some(r) => {
                r.candidates += 1;
                r.wins += u32::from(s.win);
            }
            None => {
                rates.push(Stage1Rate { side: s.side, triggers: s.triggers.0, candidates: 1, wins: u32::from(s.win) })
            }
        }
    }
    rates.sort_by_key(|r| (r.side == Side::Short, r.triggers));
    rates
}

/// Fits stage 2 (and the stage-1 rates) on `samples`.
pub fn train(
    samples: &[Sample],
    detector: DetectorParams,
    options: TrainingOptions,
    version: String,
    series: Vec<String>,
) -> Result<ReversalModel, ModelError> {
    let wins = samples.iter().filter(|s| s.win).count();
    if samples.len() < 50 || wins < 5 || wins == samples.len() {
        return Err(ModelError::Training(format!(
            "{} candidates with {wins} wins is too little to fit a model; give it more history",
            samples.len()
        )));
    }
    let n = samples.len() as f64;
    let mut means = vec![0.0; FEATURE_COUNT];
    let mut scales = vec![0.0; FEATURE_COUNT];
    let value = |s: &Sample, i: usize| if s.features[i].is_finite() { s.features[i] } else { 0.0 };
    for i in 0..FEATURE_COUNT {
        means[i] = samples.iter().map(|s| value(s, i)).sum::<f64>() / n;
        let var = samples.iter().map(|s| (value(s, i) - means[i]).powi(2)).sum::<f64>() / n;
        // A constant feature (the session hour on daily bars) gets scale 1 and so weight ~0.
        scales[i] = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    let x = Array2::from_shape_fn((samples.len(), FEATURE_COUNT), |(r, c)| {
        let s = &samples[r];
        if s.features[c].is_finite() { (s.features[c] - means[c]) / scales[c] } else { 0.0 }
    });
    let y: Array1<bool> = samples.iter().map(|s| s.win).collect();
    let fitted = LogisticRegression::default()
        .alpha(options.l2)
        .max_iterations(options.max_iterations)
        .fit(&Dataset::new(x, y))
        .map_err(|e| ModelError::Training(e.to_string()))?;
    // linfa's probability is of its "positive" class, which is whichever label is more frequent; store the
    // parameters of P(win) whichever way round that came out.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let model = ReversalModel {
        format: MODEL_FORMAT,
        version,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        means,
        scales,
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        intercept: sign * fitted.intercept(),
        base_rate: wins as f64 / n,
        stage1_rates: stage1_rates(samples),
        detector,
        options,
        trained: TrainingSummary {
            candidates: samples.len(),
            wins,
            first_time: samples.iter().map(|s| s.time).min().unwrap_or(0),
            last_time: samples.iter().map(|s| s.time).max().unwrap_or(0),
            series,
        },
    };
    model.check().map_err(ModelError::Training)?;
    Ok(model)
}
