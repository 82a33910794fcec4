//! Indicators, each in a streaming form (`update` one bar at a time, O(1) per bar) and a batch form
//! (`batch` over a slice, built on the streaming form so the two can never disagree).
//!
//! `update` returns `None` during warm-up: too little history gives no value, never a panic. Warm-up lengths
//! and seeding follow Stock.Indicators (checked against its outputs in `tests/indicators_golden.rs`), so our
//! numbers agree with a widely used reference; where a degenerate input (a flat market) makes the reference
//! return null or an arbitrary value, each type's docs say what we return instead.
//!
//! Indicators with one value output `f64`; the others output a `…Output` struct with named fields, where a
//! field that warms up later than the rest (MACD's signal, ADX's ADX) is an `Option`.

use crate::Bar;

mod adx;
mod atr;
mod bollinger;
mod ema;
mod extrema;
mod macd;
mod obv;
mod psar;
mod rsi;
mod sma;
mod stddev;
mod stochastic;
mod supertrend;
mod vwap;
mod window;
mod wma;

pub use adx::{Adx, AdxOutput};
pub use atr::{Atr, TrueRange};
pub use bollinger::{BollingerBands, BollingerOutput};
pub use ema::Ema;
pub use macd::{Macd, MacdOutput};
pub use obv::Obv;
pub use psar::{ParabolicSar, PsarOutput};
pub use rsi::Rsi;
pub use sma::Sma;
pub use stddev::{StdDev, StdDevOutput};
pub use stochastic::{StochOutput, Stochastic};
pub use supertrend::{SuperTrend, SuperTrendOutput};
pub use vwap::{Vwap, VwapAnchor};
pub use wma::Wma;

/// A streaming indicator.
pub trait Indicator {
    type Output: Copy;

    /// Feeds the next closed bar; `None` until enough bars have been seen.
    fn update(&mut self, bar: &Bar) -> Option<Self::Output>;

    /// Forgets all history.
    fn reset(&mut self);

    /// The batch form: one output per input bar, `None` during warm-up.
    fn batch(mut self, bars: &[Bar]) -> Vec<Option<Self::Output>>
    where
        Self: Sized,
    {
        bars.iter().map(|b| self.update(b)).collect()
    }
}

/// Which way a trend-following indicator (SuperTrend, Parabolic SAR) currently points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
}
