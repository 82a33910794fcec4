//! `Obv`: On-Balance Volume — cumulative volume signed by the direction of each close-to-close move.
//!
//! Starts at 0 on the first bar (there is no move yet), as Stock.Indicators does, so it has no warm-up.

use super::Indicator;
use crate::Bar;

/// On-Balance Volume; `Some` from the first bar.
#[derive(Debug, Clone, Default)]
pub struct Obv {
    prev_close: Option<f64>,
    obv: f64,
}

impl Obv {
    pub fn new() -> Obv {
        Obv::default()
    }
}

impl Indicator for Obv {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        if let Some(pc) = self.prev_close {
            if bar.close > pc {
                self.obv += bar.volume;
            } else if bar.close < pc {
                self.obv -= bar.volume;
            }
        }
        self.prev_close = Some(bar.close);
        Some(self.obv)
    }

    fn reset(&mut self) {
        *self = Obv::default();
    }
}
