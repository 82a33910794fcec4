//! The scanner: stage 1 and stage 2 for one (instrument, timeframe), fed one closed bar at a time. Live
//! scanning in `serve`, `signalpost scan` and the backtester's reversal strategy all run this same code.

use super::detector::{Candidate, IndicatorState, ReversalDetector};
use super::features::features;
use super::model::ReversalModel;
use crate::Bar;
use crate::strategy::{Action, Intent, Strategy};
use domain::Side;
use std::sync::Arc;

/// A candidate with its stage-1 and stage-2 probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSignal {
    /// Close time of the signal bar (Unix seconds).
    pub close_time: i64,
    pub side: Side,
    pub entry: f64,
    pub stop_loss: f64,
    pub take_profit: f64,
    /// The calibrated probability of reaching the take profit first: stage 2's output.
    pub confidence: f64,
    pub stage1_prob: f64,
    pub stage2_prob: f64,
    pub model_version: String,
    pub triggers: Vec<&'static str>,
    pub state: IndicatorState,
}

#[derive(Debug, Clone)]
pub struct ReversalScanner {
    detector: ReversalDetector,
    model: Arc<ReversalModel>,
    bar_seconds: i64,
}

impl ReversalScanner {
    pub fn new(model: Arc<ReversalModel>, bar_seconds: i64) -> Self {
        ReversalScanner { detector: ReversalDetector::new(model.detector), model, bar_seconds }
    }

    pub fn model(&self) -> &ReversalModel {
        &self.model
    }

    /// Feeds one closed bar; returns the signal it completes, if any.
    pub fn on_bar(&mut self, bar: &Bar) -> Option<EngineSignal> {
        let candidate = self.detector.update(bar)?;
        Some(self.score(&candidate))
    }

    fn score(&self, c: &Candidate) -> EngineSignal {
        let stage2 = self.model.predict(&features(c));
        EngineSignal {
            close_time: c.time + self.bar_seconds,
            side: c.side,
            entry: c.entry,
            stop_loss: c.stop_loss,
            take_profit: c.take_profit,
            confidence: stage2,
            stage1_prob: self.model.stage1_prob(c),
            stage2_prob: stage2,
            model_version: self.model.version.clone(),
            triggers: c.triggers.names(),
            state: c.state,
        }
    }
}

/// The reversal strategy for the backtester: enter on every signal at or above `min_confidence` while
/// flat; exits come from the stop loss and take profit.
#[derive(Debug, Clone)]
pub struct ReversalStrategy {
    scanner: ReversalScanner,
    min_confidence: f64,
}

impl ReversalStrategy {
    pub fn new(scanner: ReversalScanner, min_confidence: f64) -> Self {
        ReversalStrategy { scanner, min_confidence }
    }
}

impl Strategy for ReversalStrategy {
    fn name(&self) -> &str {
        "reversal"
    }

    fn on_bar(&mut self, bar: &Bar, position: Option<Side>) -> Action {
        // The scanner sees every bar, in or out of a position, so its indicators stay current.
        match self.scanner.on_bar(bar) {
            Some(s) if position.is_none() && s.confidence >= self.min_confidence => Action::Enter(Intent {
                side: s.side,
                stop_loss: Some(s.stop_loss),
                take_profit: Some(s.take_profit),
                confidence: Some(s.confidence),
            }),
            _ => Action::Hold,
        }
    }
}
