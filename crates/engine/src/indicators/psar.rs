//! `ParabolicSar`: Wilder's Parabolic Stop-and-Reverse.
//!
//! Follows Stock.Indicators: the first trend is a guess (rising from bar 0's low, extreme point bar 0's
//! high), so everything up to and including the first reversal is discarded as invalid. A streaming form
//! can do that exactly: it stays `None` until the bar after the first reversal, which is where the
//! reference's nulls end too. The acceleration factor starts at `step` and grows by `step` to `max`.

use super::{Direction, Indicator};
use crate::Bar;

/// One Parabolic SAR reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsarOutput {
    pub sar: f64,
    /// The trend flipped on this bar (`sar` is then the previous trend's extreme point).
    pub is_reversal: bool,
    /// The trend after this bar: `Up` means the SAR trails below price.
    pub direction: Direction,
}

/// Parabolic SAR with acceleration `step` and cap `max` (0.02, 0.2 by default).
#[derive(Debug, Clone)]
pub struct ParabolicSar {
    step: f64,
    max: f64,
    state: Option<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    rising: bool,
    af: f64,
    ep: f64,
    sar: f64,
    /// The previous bar's (high, low) and the one before it: the SAR may not enter their range.
    prev: (f64, f64),
    prev2: Option<(f64, f64)>,
    /// Whether the initial guessed trend has been superseded by a real reversal yet.
    valid: bool,
}

impl ParabolicSar {
    /// # Panics
    /// If `step` is not positive or `max` is below `step`.
    pub fn new(step: f64, max: f64) -> ParabolicSar {
        assert!(step > 0.0 && max >= step, "ParabolicSar needs 0 < step <= max");
        ParabolicSar { step, max, state: None }
    }
}

impl Default for ParabolicSar {
    fn default() -> Self {
        ParabolicSar::new(0.02, 0.2)
    }
}

impl Indicator for ParabolicSar {
    type Output = PsarOutput;

    fn update(&mut self, bar: &Bar) -> Option<PsarOutput> {
        let Some(s) = self.state.as_mut() else {
            self.state = Some(State {
                rising: true,
                af: self.step,
                ep: bar.high,
                sar: bar.low,
                prev: (bar.high, bar.low),
                prev2: None,
                valid: false,
            });
            return None;
        };
        let reversal;
        if s.rising {
            let mut sar = s.sar + s.af * (s.ep - s.sar);
            // Like the reference, the clamp needs two prior bars; on bar 1 the SAR is unclamped.
            if let Some((_, l2)) = s.prev2 {
                sar = sar.min(s.prev.1).min(l2);
            }
            reversal = bar.low < sar;
            if reversal {
                s.sar = s.ep;
                s.rising = false;
                s.af = self.step;
                s.ep = bar.low;
            } else {
                s.sar = sar;
                if bar.high > s.ep {
                    s.ep = bar.high;
                    s.af = (s.af + self.step).min(self.max);
                }
            }
        } else {
            let mut sar = s.sar - s.af * (s.sar - s.ep);
            if let Some((h2, _)) = s.prev2 {
                sar = sar.max(s.prev.0).max(h2);
            }
            reversal = bar.high > sar;
            if reversal {
                s.sar = s.ep;
                s.rising = true;
                s.af = self.step;
                s.ep = bar.high;
            } else {
                s.sar = sar;
                if bar.low < s.ep {
                    s.ep = bar.low;
                    s.af = (s.af + self.step).min(self.max);
                }
            }
        }
        s.prev2 = Some(s.prev);
        s.prev = (bar.high, bar.low);
        if !s.valid {
            s.valid = reversal;
            return None;
        }
        let direction = if s.rising { Direction::Up } else { Direction::Down };
        Some(PsarOutput { sar: s.sar, is_reversal: reversal, direction })
    }

    fn reset(&mut self) {
        self.state = None;
    }
}
