//! `sma-cross`: the textbook moving-average crossover, stop-and-reverse, no stop loss or take profit.
//!
//! The cross is defined as backtesting.py's `crossover(a, b)`: `a[-2] < b[-2] and a[-1] > b[-1]`, strict on
//! both bars, so a touch (equal averages) is not a cross and the trade counts of the two tools can be
//! compared one for one.
//!
//! "Equal" means equal in exact arithmetic. Averages of prices quoted to a fixed number of decimals are
//! either exactly equal or apart by at least one quote step over the period (1e-6 / 30 on EURUSD mids), but
//! summing them in `f64` leaves noise of about 1e-16 of their size, which would turn an exact touch into a
//! cross one way or the other. Two averages within [`TIE`] of their size are therefore a touch. On the
//! 74,439 EURUSD H1 bars this matters twice: 2007-07-13 15:00 and 2018-10-16 09:00 are exact touches.
use crate::Bar;
use crate::indicators::{Indicator, Sma};
use crate::strategy::{Action, Intent, Strategy};
use domain::Side;

/// Goes long when the fast SMA of closes crosses above the slow one and short when it crosses below,
/// closing the previous position each time (`Action::Reverse`), filled at the next bar's open.
#[derive(Debug, Clone)]
pub struct SmaCross {
    fast: Sma,
    slow: Sma,
    /// (fast, slow) at the previous bar, once both are warmed up.
    previous: Option<(f64, f64)>,
}

/// Relative difference below which two averages count as equal: far above `f64` summing noise (~1e-16),
/// far below the smallest real difference of averages of quoted prices (~1e-8 relative).
pub const TIE: f64 = 1e-12;

/// `a < b` beyond rounding noise.
fn below(a: f64, b: f64) -> bool {
    b - a > TIE * a.abs().max(b.abs())
}

impl SmaCross {
    /// # Panics
    /// If a period is zero (see [`Sma::new`]).
    pub fn new(fast: usize, slow: usize) -> SmaCross {
        SmaCross { fast: Sma::new(fast), slow: Sma::new(slow), previous: None }
    }

    fn reverse(side: Side) -> Action {
        Action::Reverse(Intent { side, stop_loss: None, take_profit: None, confidence: None })
    }

    /// The action for this bar's (fast, slow) averages, given the previous bar's.
    fn decide(&mut self, now: Option<(f64, f64)>) -> Action {
        let action = match (self.previous, now) {
            (Some((f0, s0)), Some((f1, s1))) if below(f0, s0) && below(s1, f1) => Self::reverse(Side::Long),
            (Some((f0, s0)), Some((f1, s1))) if below(s0, f0) && below(f1, s1) => Self::reverse(Side::Short),
            _ => Action::Hold,
        };
        self.previous = now;
        action
    }
}

impl Default for SmaCross {
    /// SMA(10) against SMA(30), as in backtesting.py's README.
    fn default() -> Self {
        SmaCross::new(10, 30)
    }
}

impl Strategy for SmaCross {
    fn name(&self) -> &str {
        "sma-cross"
    }

    fn on_bar(&mut self, bar: &Bar, _position: Option<Side>) -> Action {
        let now = self.fast.update(bar).zip(self.slow.update(bar));
        self.decide(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar { time: i as i64 * 3600, open: c, high: c, low: c, close: c, volume: 0.0 })
            .collect()
    }

    fn actions(strategy: &mut SmaCross, closes: &[f64]) -> Vec<Action> {
        bars(closes).iter().map(|b| strategy.on_bar(b, None)).collect()
    }

    #[test]
    fn crosses_up_and_down_on_the_bar_they_happen() {
        // SMA(1) is the close, SMA(2) the mean of the last two closes.
        let mut s = SmaCross::new(1, 2);
        let got = actions(&mut s, &[5.0, 4.0, 3.0, 4.0, 5.0, 4.0]);
        // bar 1: f 4 < s 4.5; bar 2: 3 < 3.5; bar 3: 4 > 3.5 → up; bar 4: 5 > 4.5; bar 5: 4 < 4.5 → down.
        assert_eq!(got[..3], [Action::Hold, Action::Hold, Action::Hold]);
        assert_eq!(got[3], SmaCross::reverse(Side::Long));
        assert_eq!(got[4], Action::Hold);
        assert_eq!(got[5], SmaCross::reverse(Side::Short));
    }

    #[test]
    fn a_touch_is_not_a_cross() {
        // SMA(2) equals the close when two closes repeat: bar 2 and bar 4 are touches. Going from below to a
        // touch to above (bars 1-3), or from above to a touch to below (bars 3-5), is no cross under the
        // strict rule, as in backtesting.py.
        let mut s = SmaCross::new(1, 2);
        let got = actions(&mut s, &[2.0, 1.0, 1.0, 3.0, 3.0, 1.0]);
        assert!(got.iter().all(|a| *a == Action::Hold), "{got:?}");
    }

    #[test]
    fn summing_noise_at_an_exact_touch_is_not_a_cross() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64: a fast average that equals the slow one in exact
        // arithmetic but lands one ulp above it. Below, then "above" by noise, then below: no cross.
        let noisy = 0.1 + 0.2;
        assert!(noisy > 0.3);
        let mut s = SmaCross::new(1, 1);
        s.previous = Some((0.2, 0.3));
        assert_eq!(s.decide(Some((noisy, 0.3))), Action::Hold);
        assert_eq!(s.decide(Some((0.2, 0.3))), Action::Hold);
        s.previous = Some((0.2, 0.3));
        assert_eq!(s.decide(Some((0.3000001, 0.3))), SmaCross::reverse(Side::Long));
    }

    #[test]
    fn no_signal_during_warm_up() {
        let mut s = SmaCross::default();
        let closes: Vec<f64> = (0..30).map(|i| if i % 2 == 0 { 1.0 } else { 2.0 }).collect();
        assert!(actions(&mut s, &closes).iter().all(|a| *a == Action::Hold));
    }
}
