//! `Rsi`: the Relative Strength Index with Wilder's smoothing.
//!
//! Seeded like Stock.Indicators (and Wilder): the first average gain and loss are plain means of the first
//! `period` changes, then each new change is folded in with weight `1 / period`. The first value therefore
//! appears on bar index `period` (bar 0 has no change).

use super::Indicator;
use crate::Bar;

/// Relative Strength Index of `close` over `period` bars (14 by default), in 0..=100.
///
/// A window with neither gains nor losses reads 50 (neutral); Stock.Indicators reports null for it on the
/// seed bar and 100 afterwards, which would call a dead-flat market overbought.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    prev: Option<f64>,
    seen: usize,
    avg_gain: f64,
    avg_loss: f64,
}

impl Rsi {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> Rsi {
        assert!(period > 0, "Rsi period must be positive");
        Rsi { period, prev: None, seen: 0, avg_gain: 0.0, avg_loss: 0.0 }
    }

    pub fn period(&self) -> usize {
        self.period
    }

    pub fn next(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev.replace(x)?;
        let change = x - prev;
        let (gain, loss) = (change.max(0.0), (-change).max(0.0));
        let n = self.period as f64;
        self.seen += 1;
        if self.seen <= self.period {
            // Seed phase: accumulate sums, divided once so the seed is an exact mean.
            self.avg_gain += gain;
            self.avg_loss += loss;
            if self.seen < self.period {
                return None;
            }
            self.avg_gain /= n;
            self.avg_loss /= n;
        } else {
            self.avg_gain = (self.avg_gain * (n - 1.0) + gain) / n;
            self.avg_loss = (self.avg_loss * (n - 1.0) + loss) / n;
        }
        Some(if self.avg_loss > 0.0 {
            100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss)
        } else if self.avg_gain > 0.0 {
            100.0
        } else {
            50.0
        })
    }
}

impl Default for Rsi {
    fn default() -> Self {
        Rsi::new(14)
    }
}

impl Indicator for Rsi {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }

    fn reset(&mut self) {
        self.prev = None;
        self.seen = 0;
        self.avg_gain = 0.0;
        self.avg_loss = 0.0;
    }
}
