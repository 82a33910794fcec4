//! What a candidate would have done: the training label (take profit before stop loss within the
//! horizon) and the R multiple it would have earned. The rules are the backtester's: the path starts at
//! the bar after the signal, a bar touching both levels counts the stop loss, and a bar opening beyond a
//! level fills at its open.

use super::detector::Candidate;
use crate::Bar;
use domain::Side;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The take profit was reached before the stop loss within the horizon.
    pub win: bool,
    /// Profit in units of the initial risk: +reward_risk for a clean win, −1 for a clean loss, the
    /// mark-to-market at the horizon's last close when neither level was reached.
    pub r: f64,
    /// Bars until the exit (the horizon when neither level was reached).
    pub bars: usize,
}

/// The outcome of `candidate`, signalled at the close of `bars[index]`; None when fewer than `horizon`
/// bars follow and neither level was reached (the answer is not known yet).
pub fn label(candidate: &Candidate, bars: &[Bar], index: usize, horizon: usize) -> Option<Outcome> {
    let dir = if candidate.side == Side::Long { 1.0 } else { -1.0 };
    let risk = (candidate.entry - candidate.stop_loss).abs();
    if risk <= 0.0 {
        return None;
    }
    let r_at = |price: f64| (price - candidate.entry) * dir / risk;
    let later = bars.get(index + 1..)?;
    for (i, bar) in later.iter().take(horizon).enumerate() {
        let (adverse, favourable, open) =
            if dir > 0.0 { (bar.low, bar.high, bar.open) } else { (-bar.high, -bar.low, -bar.open) };
        let (sl, tp) = (candidate.stop_loss * dir, candidate.take_profit * dir);
        if adverse <= sl {
            let fill = if open < sl { open } else { sl };
            return Some(Outcome { win: false, r: r_at(fill * dir), bars: i + 1 });
        }
        if favourable >= tp {
            let fill = if open > tp { open } else { tp };
            return Some(Outcome { win: true, r: r_at(fill * dir), bars: i + 1 });
        }
    }
    if later.len() < horizon {
        return None;
    }
    Some(Outcome { win: false, r: r_at(later[horizon - 1].close), bars: horizon })
}
