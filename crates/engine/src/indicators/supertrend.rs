//! `SuperTrend`: an ATR trailing band that flips sides when the close crosses it.
//!
//! Same rules as Stock.Indicators: bands at `(high + low) / 2 ± multiplier · ATR`, each only allowed to
//! tighten unless the previous close broke through it, and the first reading is bullish iff the close is at
//! or above the bar's midpoint. It starts with the ATR, on bar index `period`.

use super::{Atr, Direction, Indicator};
use crate::Bar;

/// One SuperTrend reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuperTrendOutput {
    /// The active band: the lower band in an up trend, the upper band in a down trend.
    pub value: f64,
    pub direction: Direction,
}

/// SuperTrend over `period` bars of ATR with `multiplier` (10, 3 by default).
#[derive(Debug, Clone)]
pub struct SuperTrend {
    atr: Atr,
    multiplier: f64,
    bands: Option<(f64, f64)>,
    bullish: bool,
    prev_close: f64,
}

impl SuperTrend {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize, multiplier: f64) -> SuperTrend {
        SuperTrend { atr: Atr::new(period), multiplier, bands: None, bullish: true, prev_close: f64::NAN }
    }
}

impl Default for SuperTrend {
    fn default() -> Self {
        SuperTrend::new(10, 3.0)
    }
}

impl Indicator for SuperTrend {
    type Output = SuperTrendOutput;

    fn update(&mut self, bar: &Bar) -> Option<SuperTrendOutput> {
        let prev_close = std::mem::replace(&mut self.prev_close, bar.close);
        let atr = self.atr.update(bar)?;
        let mid = (bar.high + bar.low) / 2.0;
        let upper_eval = mid + self.multiplier * atr;
        let lower_eval = mid - self.multiplier * atr;
        let (mut upper, mut lower) = match self.bands {
            Some(b) => b,
            None => {
                self.bullish = bar.close >= mid;
                (upper_eval, lower_eval)
            }
        };
        if upper_eval < upper || prev_close > upper {
            upper = upper_eval;
        }
        if lower_eval > lower || prev_close < lower {
            lower = lower_eval;
        }
        self.bands = Some((upper, lower));
        self.bullish = bar.close > if self.bullish { lower } else { upper };
        Some(if self.bullish {
            SuperTrendOutput { value: lower, direction: Direction::Up }
        } else {
            SuperTrendOutput { value: upper, direction: Direction::Down }
        })
    }

    fn reset(&mut self) {
        self.atr.reset();
        self.bands = None;
        self.bullish = true;
        self.prev_close = f64::NAN;
    }
}
