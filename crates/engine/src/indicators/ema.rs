//! `Ema`: the exponential moving average of closes, seeded the way Stock.Indicators seeds it.
//!
//! The first value is the SMA of the first `period` closes, not the first close: seeding with one close
//! would let that single bar dominate the average for dozens of bars, and matching the reference library
//! keeps our numbers comparable with charts users already trust.

use super::{Indicator, Sma};
use crate::Bar;

/// Exponential moving average of `close` with smoothing `2 / (period + 1)`.
#[derive(Debug, Clone)]
pub struct Ema {
    k: f64,
    seed: Sma,
    last: Option<f64>,
}

impl Ema {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> Ema {
        assert!(period > 0, "Ema period must be positive");
        Ema { k: 2.0 / (period as f64 + 1.0), seed: Sma::new(period), last: None }
    }

    pub fn period(&self) -> usize {
        self.seed.period()
    }

    /// The streaming core on a bare value, so MACD can smooth its own line with it.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        let ema = match self.last {
            Some(last) => last + self.k * (x - last),
            None => self.seed.next(x)?,
        };
        self.last = Some(ema);
        Some(ema)
    }
}

impl Indicator for Ema {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }

    fn reset(&mut self) {
        self.seed.reset();
        self.last = None;
    }
}
