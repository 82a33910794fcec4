//! The reversal engine: stage 1 finds rule-based reversal candidates at candle close, stage 2 estimates
//! the probability that each one reaches its take profit before its stop loss.
//!
//! - `detector`: the stage-1 rules and the levels (entry, stop loss, take profit) of each candidate.
//! - `features`: what stage 2 sees of a candidate, aligned with its side so one model serves both.
//! - `outcome`: what a candidate would have done next (the training label and its R multiple).
//! - `model`: the stage-2 logistic regression, its versioned file format and inference.
//! - `evaluate`: walk-forward evaluation (AUC, Brier, calibration, thresholds against the baseline).
//! - `scanner`: detector + model per (instrument, timeframe): the code path shared by live scanning,
//!   `signalpost scan` and the backtester's reversal strategy.
//!
//! The rules and the results are written up in `docs/MODEL.md`.

pub mod detector;
pub mod evaluate;
pub mod features;
pub mod model;
pub mod outcome;
pub mod scanner;

pub use detector::{Candidate, DetectorParams, ReversalDetector, Triggers};
pub use evaluate::{EvaluationReport, Sample, collect_samples, walk_forward};
pub use features::{FEATURE_COUNT, FEATURE_NAMES, Features};
pub use model::{ModelError, ReversalModel, TrainingOptions, train};
pub use outcome::{Outcome, label};
pub use scanner::{EngineSignal, ReversalScanner, ReversalStrategy};
