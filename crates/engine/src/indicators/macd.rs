//! `Macd`: Moving Average Convergence/Divergence — fast EMA minus slow EMA, its EMA signal line, and the
//! histogram between them.
//!
//! Each EMA is SMA-seeded (see `Ema`), including the signal line, which is seeded with the SMA of the first
//! `signal` MACD values. So the MACD line starts on bar `slow − 1` while the signal and histogram start
//! `signal − 1` bars later; both are reported as soon as they exist, hence the `Option` fields.

use super::{Ema, Indicator};
use crate::Bar;

/// One MACD reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdOutput {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of `macd`; `None` until `signal` MACD values exist.
    pub signal: Option<f64>,
    /// `macd − signal`.
    pub histogram: Option<f64>,
}

/// MACD of closes (12, 26, 9 by default).
#[derive(Debug, Clone)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    /// # Panics
    /// If any period is zero or `fast >= slow` (the lines would be swapped or identical).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Macd {
        assert!(fast < slow, "Macd fast period must be shorter than the slow one");
        Macd { fast: Ema::new(fast), slow: Ema::new(slow), signal: Ema::new(signal) }
    }
}

impl Default for Macd {
    fn default() -> Self {
        Macd::new(12, 26, 9)
    }
}

impl Indicator for Macd {
    type Output = MacdOutput;

    fn update(&mut self, bar: &Bar) -> Option<MacdOutput> {
        // Both EMAs must see every bar, so neither may be short-circuited by the other's warm-up.
        let fast = self.fast.next(bar.close);
        let slow = self.slow.next(bar.close);
        let macd = fast? - slow?;
        let signal = self.signal.next(macd);
        Some(MacdOutput { macd, signal, histogram: signal.map(|s| macd - s) })
    }

    fn reset(&mut self) {
        self.fast.reset();
        self.slow.reset();
        self.signal.reset();
    }
}
