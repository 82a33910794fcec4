//! `TrueRange` and `Atr` (Average True Range with Wilder's smoothing).
//!
//! True range needs the previous close, so the first bar has none: Stock.Indicators reports null there
//! rather than falling back to high − low, and so do we. ATR's seed is the mean of the first `period` true
//! ranges (bars 1..=period), so its first value is on bar index `period`.

use super::Indicator;
use crate::Bar;

/// The true range: the largest of high − low, |high − previous close| and |low − previous close|.
#[derive(Debug, Clone, Default)]
pub struct TrueRange {
    prev_close: Option<f64>,
}

impl TrueRange {
    pub fn new() -> TrueRange {
        TrueRange::default()
    }
}

impl Indicator for TrueRange {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        let pc = self.prev_close.replace(bar.close)?;
        Some((bar.high - bar.low).max((bar.high - pc).abs()).max((bar.low - pc).abs()))
    }

    fn reset(&mut self) {
        self.prev_close = None;
    }
}

/// Average True Range over `period` bars (14 by default), Wilder-smoothed.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    tr: TrueRange,
    seen: usize,
    atr: f64,
}

impl Atr {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> Atr {
        assert!(period > 0, "Atr period must be positive");
        Atr { period, tr: TrueRange::new(), seen: 0, atr: 0.0 }
    }

    pub fn period(&self) -> usize {
        self.period
    }
}

impl Default for Atr {
    fn default() -> Self {
        Atr::new(14)
    }
}

impl Indicator for Atr {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        let tr = self.tr.update(bar)?;
        let n = self.period as f64;
        self.seen += 1;
        if self.seen < self.period {
            self.atr += tr;
            return None;
        }
        self.atr = if self.seen == self.period { (self.atr + tr) / n } else { (self.atr * (n - 1.0) + tr) / n };
        Some(self.atr)
    }

    fn reset(&mut self) {
        self.tr.reset();
        self.seen = 0;
        self.atr = 0.0;
    }
}
