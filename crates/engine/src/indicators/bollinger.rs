//! `BollingerBands`: a moving average of closes with bands `k` population standard deviations either side.
//!
//! Built on `StdDev` so the mean and the deviation come from one window pass and cannot disagree.

use super::{Indicator, StdDev};
use crate::Bar;

/// One Bollinger Bands reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerOutput {
    pub upper: f64,
    /// The SMA of closes.
    pub middle: f64,
    pub lower: f64,
    /// Where the close sits between the bands (0 at `lower`, 1 at `upper`); `None` when the bands coincide.
    pub percent_b: Option<f64>,
    /// `(upper − lower) / middle`; `None` when the average is zero.
    pub width: Option<f64>,
    /// `(close − middle) / std_dev`; `None` when the window is flat.
    pub z_score: Option<f64>,
}

/// Bollinger Bands over `period` closes with `k` standard deviations (20, 2 by default).
#[derive(Debug, Clone)]
pub struct BollingerBands {
    std: StdDev,
    k: f64,
}

impl BollingerBands {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize, k: f64) -> BollingerBands {
        BollingerBands { std: StdDev::new(period), k }
    }
}

impl Default for BollingerBands {
    fn default() -> Self {
        BollingerBands::new(20, 2.0)
    }
}

impl Indicator for BollingerBands {
    type Output = BollingerOutput;

    fn update(&mut self, bar: &Bar) -> Option<BollingerOutput> {
        let (middle, sd) = self.std.next(bar.close)?;
        let upper = middle + self.k * sd;
        let lower = middle - self.k * sd;
        Some(BollingerOutput {
            upper,
            middle,
            lower,
            percent_b: (upper != lower).then(|| (bar.close - lower) / (upper - lower)),
            width: (middle != 0.0).then(|| (upper - lower) / middle),
            z_score: (sd != 0.0).then(|| (bar.close - middle) / sd),
        })
    }

    fn reset(&mut self) {
        self.std.reset();
    }
}
