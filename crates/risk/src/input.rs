//! What the pipeline is asked about: the follower's account as it stands, the signal to copy, and the
//! provider's track record.

use domain::{Entry, Price, Side, Signal, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The follower's account at the moment of the decision, in the account currency. The caller counts
/// "today" over [`crate::FollowerRiskSettings::trading_day`], so the gates and the counts agree on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// ISO code of the account currency, e.g. `USD`.
    pub currency: String,
    /// Current balance (realised; open positions' floating P&L is not in it).
    pub balance: Decimal,
    /// Realised P&L of positions closed today: negative is a loss.
    pub realised_pnl_today: Decimal,
    pub open_positions: u32,
    /// Signals this follower already copied today (what the subscription tier counts).
    pub signals_taken_today: u32,
}

impl AccountSnapshot {
    /// A USD account with `balance` and nothing done today.
    pub fn usd(balance: Decimal) -> AccountSnapshot {
        AccountSnapshot {
            currency: "USD".into(),
            balance,
            realised_pnl_today: Decimal::ZERO,
            open_positions: 0,
            signals_taken_today: 0,
        }
    }

    /// The balance the day started with: the daily loss limit is a share of it, so losing during the day
    /// does not shrink the limit.
    pub fn day_start_balance(&self) -> Decimal {
        self.balance - self.realised_pnl_today
    }
}

/// The parsed signal to copy: what the provider said, before any sizing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalIntent {
    pub symbol: Symbol,
    pub side: Side,
    pub entry: Entry,
    pub stop_loss: Option<Price>,
    pub take_profits: Vec<Price>,
}

impl SignalIntent {
    pub fn from_signal(signal: &Signal) -> SignalIntent {
        SignalIntent {
            symbol: signal.symbol.clone(),
            side: signal.side,
            entry: signal.entry,
            stop_loss: signal.stop_loss,
            take_profits: signal.take_profits.clone(),
        }
    }
}

/// A provider's realised results in R (profit over the stop-loss risk), what the Kelly sizing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// Closed trades with a stop loss, breakevens included.
    pub trades: u32,
    /// Share of `trades` that won, 0..=1.
    pub win_rate: Decimal,
    /// Mean R of the winners (positive).
    pub average_win_r: Decimal,
    /// Mean R lost by the losers, as a positive number (a full stop-loss hit is 1).
    pub average_loss_r: Decimal,
}

impl ProviderRecord {
    /// Summarises realised R multiples (see `domain::stats::realised_r`): positive wins, negative losses,
    /// zero breakeven.
    pub fn from_r_multiples(rs: &[Decimal]) -> ProviderRecord {
        let wins: Vec<Decimal> = rs.iter().copied().filter(|r| r.is_sign_positive() && !r.is_zero()).collect();
        let losses: Vec<Decimal> = rs.iter().copied().filter(|r| r.is_sign_negative() && !r.is_zero()).collect();
        let mean = |xs: &[Decimal]| {
            if xs.is_empty() { Decimal::ZERO } else { xs.iter().sum::<Decimal>() / Decimal::from(xs.len()) }
        };
        let trades = u32::try_from(rs.len()).unwrap_or(u32::MAX);
        ProviderRecord {
            trades,
            win_rate: if rs.is_empty() { Decimal::ZERO } else { Decimal::from(wins.len()) / Decimal::from(rs.len()) },
            average_win_r: mean(&wins),
            average_loss_r: mean(&losses).abs(),
        }
    }

    /// The full Kelly fraction of the balance to risk per trade: W − (1 − W) × loss / win. Zero or negative
    /// means the record shows no edge. None when the record cannot be read (a win rate outside 0..=1, negative
    /// averages, or wins with no average win).
    pub fn kelly(&self) -> Option<Decimal> {
        let w = self.win_rate;
        if w < Decimal::ZERO || w > Decimal::ONE || self.average_win_r < Decimal::ZERO {
            return None;
        }
        if self.average_loss_r < Decimal::ZERO {
            return None;
        }
        if self.average_win_r.is_zero() {
            // No winners to weigh the losers against: the formula runs to −∞, read as −1 (every bet lost), or
            // 0 when every trade broke even. Winners that won nothing do not add up.
            let no_edge = if self.average_loss_r.is_zero() { Decimal::ZERO } else { Decimal::NEGATIVE_ONE };
            return w.is_zero().then_some(no_edge);
        }
        Some(w - (Decimal::ONE - w) * self.average_loss_r / self.average_win_r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn record_from_r_multiples() {
        let r = ProviderRecord::from_r_multiples(&[dec!(2), dec!(-1), dec!(1), dec!(0), dec!(-0.5)]);
        assert_eq!(r.trades, 5);
        assert_eq!(r.win_rate, dec!(0.4));
        assert_eq!(r.average_win_r, dec!(1.5));
        assert_eq!(r.average_loss_r, dec!(0.75));
        // W − (1 − W) × L / G = 0.4 − 0.6 × 0.75 / 1.5
        assert_eq!(r.kelly(), Some(dec!(0.1)));
        assert_eq!(ProviderRecord::from_r_multiples(&[]).trades, 0);
    }

    #[test]
    fn kelly_of_losers_and_nonsense() {
        let losers = ProviderRecord::from_r_multiples(&[dec!(-1), dec!(-1)]);
        assert!(losers.kelly().unwrap() < Decimal::ZERO);
        let bad = ProviderRecord { trades: 10, win_rate: dec!(1.2), average_win_r: dec!(1), average_loss_r: dec!(1) };
        assert_eq!(bad.kelly(), None);
        let flawless = ProviderRecord::from_r_multiples(&[dec!(1), dec!(2)]);
        assert_eq!(flawless.kelly(), Some(dec!(1)));
    }
}
