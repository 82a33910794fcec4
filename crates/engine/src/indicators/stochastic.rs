//! `Stochastic`: the slow stochastic oscillator — where the close sits in the recent high/low range (%K,
//! SMA-smoothed), its SMA signal line (%D) and %J = 3·%K − 2·%D.
//!
//! Window highs and lows come from monotonic deques, so each bar is O(1) whatever the lookback.

use super::Indicator;
use super::Sma;
use super::extrema::{RollingMax, RollingMin};
use crate::Bar;

/// One stochastic reading, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StochOutput {
    /// %K: the raw oscillator smoothed over `smooth_periods`.
    pub k: f64,
    /// %D: the SMA of %K over `signal_periods`; `None` until that many %K values exist.
    pub d: Option<f64>,
    /// %J = 3·%K − 2·%D.
    pub j: Option<f64>,
}

/// Stochastic oscillator (14, 3, 3 by default: lookback, signal, smoothing — Stock.Indicators' order).
///
/// A flat window (highest high = lowest low) gives a raw %K of 0, as Stock.Indicators does, rather than a
/// division by zero. A close at or beyond the window's extremes gives exactly 100 or 0.
#[derive(Debug, Clone)]
pub struct Stochastic {
    lookback: usize,
    signal_periods: usize,
    smooth_periods: usize,
    high: RollingMax,
    low: RollingMin,
    smooth: Sma,
    signal: Sma,
}

impl Stochastic {
    /// # Panics
    /// If any period is zero.
    pub fn new(lookback: usize, signal_periods: usize, smooth_periods: usize) -> Stochastic {
        Stochastic {
            lookback,
            signal_periods,
            smooth_periods,
            high: RollingMax::new(lookback),
            low: RollingMin::new(lookback),
            smooth: Sma::new(smooth_periods),
            signal: Sma::new(signal_periods),
        }
    }

    /// `(lookback, signal, smooth)`.
    pub fn periods(&self) -> (usize, usize, usize) {
        (self.lookback, self.signal_periods, self.smooth_periods)
    }
}

impl Default for Stochastic {
    fn default() -> Self {
        Stochastic::new(14, 3, 3)
    }
}

impl Indicator for Stochastic {
    type Output = StochOutput;

    fn update(&mut self, bar: &Bar) -> Option<StochOutput> {
        let hh = self.high.push(bar.high);
        let ll = self.low.push(bar.low);
        let (hh, ll) = (hh?, ll?);
        let raw = if hh == ll || bar.close <= ll {
            0.0
        } else if bar.close >= hh {
            100.0
        } else {
            100.0 * (bar.close - ll) / (hh - ll)
        };
        // The running-sum SMA can land an ulp outside 0..=100; callers compare against those bounds.
        let k = self.smooth.next(raw)?.clamp(0.0, 100.0);
        let d = self.signal.next(k).map(|d| d.clamp(0.0, 100.0));
        Some(StochOutput { k, d, j: d.map(|d| 3.0 * k - 2.0 * d) })
    }

    fn reset(&mut self) {
        self.high.clear();
        self.low.clear();
        self.smooth.reset();
        self.signal.reset();
    }
}
