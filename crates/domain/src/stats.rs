//! Trading statistics over closed trades: win rate, profit factor, Sharpe, drawdown, realised R, holding
//! time, and the series the dashboard draws (equity, drawdown, win rate by confidence). Pure functions: the
//! caller loads the trades (and, for the per-timeframe and calibration views, each trade's signal).
//!
//! Definitions, so every screen says the same thing:
//! - win rate: wins / closed trades, in percent (breakevens count as closed, not as wins);
//! - profit factor: gross profit / gross loss over trades with an account-currency profit;
//! - Sharpe: per-trade, not annualised: the mean of each trade's return (price change × direction / entry)
//!   over its sample standard deviation (n − 1), with no risk-free rate;
//! - max drawdown: the largest fall of the equity curve (cumulative profit, starting at 0, in close order)
//!   from its running peak, in the account currency;
//! - realised R: (exit − entry) × direction / |entry − stop loss|, for trades that had a stop loss.

use crate::{Timeframe, Trade, TradeResult};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::BTreeMap;

/// The headline figures over a set of closed trades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub closed: usize,
    pub wins: usize,
    pub losses: usize,
    pub breakeven: usize,
    /// Percent, `None` without closed trades.
    pub win_rate: Option<Decimal>,
    /// Sum of the account-currency profits that are known.
    pub total_profit: Decimal,
    /// Closed trades without an account-currency profit (no conversion rate was known), left out of money
    /// figures.
    pub unpriced: usize,
    pub total_pips: Option<Decimal>,
    /// `None` when nothing was lost (the ratio has no finite value).
    pub profit_factor: Option<Decimal>,
    /// Per-trade Sharpe ratio (see the module docs); `None` with fewer than two trades or no variation.
    pub sharpe: Option<f64>,
    /// Largest peak-to-trough fall of the equity curve, as a positive amount (0 when it never fell).
    pub max_drawdown: Decimal,
    /// Mean realised R over `r_trades` trades with a stop loss; `None` when none had one.
    pub average_r: Option<Decimal>,
    pub r_trades: usize,
    /// Mean time from open to close, in seconds.
    pub average_holding_seconds: Option<i64>,
}

/// A trade's realised R: what it made per unit its stop loss put at risk.
pub fn realised_r(trade: &Trade) -> Option<Decimal> {
    let (exit, stop) = (trade.exit_price?, trade.stop_loss?);
    let risk = (trade.entry.value() - stop.value()).abs();
    (!risk.is_zero()).then(|| (exit.value() - trade.entry.value()) * trade.side.direction() / risk)
}

/// A trade's return on its entry price: (exit − entry) × direction / entry.
pub fn trade_return(trade: &Trade) -> Option<Decimal> {
    let exit = trade.exit_price?;
    Some((exit.value() - trade.entry.value()) * trade.side.direction() / trade.entry.value())
}

fn closed_only<'a>(trades: &'a [Trade]) -> impl Iterator<Item = &'a Trade> + 'a {
    trades.iter().filter(|t| t.closed_at.is_some() && t.result.is_some())
}

/// The headline figures of the closed trades among `trades`.
pub fn summary(trades: &[Trade]) -> Summary {
    let closed: Vec<&Trade> = closed_only(trades).collect();
    let count = |r: TradeResult| closed.iter().filter(|t| t.result == Some(r)).count();
    let (wins, losses, breakeven) = (count(TradeResult::Win), count(TradeResult::Loss), count(TradeResult::Breakeven));
    let win_rate = (!closed.is_empty()).then(|| Decimal::from(wins * 100) / Decimal::from(closed.len()));
    let profits: Vec<Decimal> = closed.iter().filter_map(|t| t.profit).collect();
    let gross_profit: Decimal = profits.iter().filter(|p| p.is_sign_positive()).sum();
    let gross_loss: Decimal = -profits.iter().filter(|p| p.is_sign_negative()).sum::<Decimal>();
    let pips: Vec<Decimal> = closed.iter().filter_map(|t| t.pips).collect();
    let rs: Vec<Decimal> = closed.iter().filter_map(|t| realised_r(t)).collect();
    let held: Vec<i64> =
        closed.iter().filter_map(|t| t.closed_at.map(|c| (c - t.opened_at).num_seconds().max(0))).collect();
    let max_drawdown = drawdown(&equity_curve(trades)).iter().map(|p| -p.value).max().unwrap_or_default();
    Summary {
        closed: closed.len(),
        wins,
        losses,
        breakeven,
        win_rate,
        total_profit: profits.iter().sum(),
        unpriced: closed.len() - profits.len(),
        total_pips: (!pips.is_empty()).then(|| pips.iter().sum()),
        profit_factor: (!gross_loss.is_zero()).then(|| gross_profit / gross_loss),
        sharpe: sharpe(&closed.iter().filter_map(|t| trade_return(t)).collect::<Vec<_>>()),
        max_drawdown,
        average_r: (!rs.is_empty()).then(|| rs.iter().sum::<Decimal>() / Decimal::from(rs.len())),
        r_trades: rs.len(),
        average_holding_seconds: (!held.is_empty()).then(|| held.iter().sum::<i64>() / held.len() as i64),
    }
}

/// Mean over sample standard deviation of per-trade returns; `None` with fewer than two or no spread.
pub fn sharpe(returns: &[Decimal]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let values: Vec<f64> = returns.iter().filter_map(|r| r.to_f64()).collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let deviation = variance.sqrt();
    (deviation > 0.0).then(|| mean / deviation)
}

/// One point of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: Decimal,
}

/// Cumulative profit after each closed trade with a known profit, in close order (ties by id).
pub fn equity_curve(trades: &[Trade]) -> Vec<Point> {
    let mut closed: Vec<&Trade> = closed_only(trades).filter(|t| t.profit.is_some()).collect();
    closed.sort_by_key(|t| (t.closed_at, t.id));
    let mut total = Decimal::ZERO;
    closed
        .into_iter()
        .map(|t| {
            total += t.profit.unwrap_or_default();
            Point { at: t.closed_at.unwrap_or(t.opened_at), value: total }
        })
        .collect()
}

/// How far below its running peak (which starts at 0) the equity stands at each point: 0 or negative.
pub fn drawdown(equity: &[Point]) -> Vec<Point> {
    let mut peak = Decimal::ZERO;
    equity
        .iter()
        .map(|p| {
            peak = peak.max(p.value);
            Point { at: p.at, value: p.value - peak }
        })
        .collect()
}

/// A closed trade with what its signal said, for the grouped views.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub trade: &'a Trade,
    pub timeframe: Option<Timeframe>,
    /// The signal's confidence, 0 to 1.
    pub confidence: Option<Decimal>,
}

/// Figures of one group (a pair, a timeframe).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    pub closed: usize,
    pub wins: usize,
    /// Percent.
    pub win_rate: Decimal,
    pub profit: Decimal,
}

fn grouped<'a>(samples: &[Sample<'a>], key: impl Fn(&Sample<'a>) -> String) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.trade.closed_at.is_some() && s.trade.result.is_some()) {
        let name = key(sample);
        let group = groups.entry(name.clone()).or_insert(Group {
            key: name,
            closed: 0,
            wins: 0,
            win_rate: Decimal::ZERO,
            profit: Decimal::ZERO,
        });
        group.closed += 1;
        group.wins += usize::from(sample.trade.result == Some(TradeResult::Win));
        group.profit += sample.trade.profit.unwrap_or_default();
    }
    groups
        .into_values()
        .map(|mut g| {
            g.win_rate = Decimal::from(g.wins * 100) / Decimal::from(g.closed);
            g
        })
        .collect()
}

/// Closed trades by pair, alphabetically.
pub fn by_pair(samples: &[Sample<'_>]) -> Vec<Group> {
    grouped(samples, |s| s.trade.symbol.as_str().to_string())
}

/// Closed trades by their signal's timeframe, alphabetically; `none` for trades without one.
pub fn by_timeframe(samples: &[Sample<'_>]) -> Vec<Group> {
    grouped(samples, |s| s.timeframe.map_or_else(|| "none".to_string(), |t| t.as_str().to_string()))
}

/// Calibration: for the closed trades whose signal had a confidence, grouped in buckets of 10 points, the
/// mean predicted probability against the realised win rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Lower edge in percent: 0, 10, …, 90 (the last bucket includes 100).
    pub from: u32,
    pub closed: usize,
    /// Mean confidence, percent.
    pub predicted: Decimal,
    /// Wins / closed, percent.
    pub realised: Decimal,
}

pub fn calibration(samples: &[Sample<'_>]) -> Vec<Bucket> {
    let mut buckets: BTreeMap<u32, (usize, usize, Decimal)> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.trade.closed_at.is_some() && s.trade.result.is_some()) {
        let Some(confidence) = sample.confidence else { continue };
        let percent = (confidence * Decimal::ONE_HUNDRED).clamp(Decimal::ZERO, Decimal::ONE_HUNDRED);
        let from = (percent / Decimal::TEN).floor().to_u32().unwrap_or(0).min(9) * 10;
        let entry = buckets.entry(from).or_default();
        entry.0 += 1;
        entry.1 += usize::from(sample.trade.result == Some(TradeResult::Win));
        entry.2 += percent;
    }
    buckets
        .into_iter()
        .map(|(from, (closed, wins, sum))| Bucket {
            from,
            closed,
            predicted: sum / Decimal::from(closed),
            realised: Decimal::from(wins * 100) / Decimal::from(closed),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseReason, Lots, Price, Side, Symbol, TradeId, TradeStatus, UserId};
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, hour, 0, 0).unwrap()
    }

    fn closed(
        id: i64,
        side: Side,
        entry: Decimal,
        exit: Decimal,
        sl: Option<Decimal>,
        profit: Option<Decimal>,
    ) -> Trade {
        let result = match profit.unwrap_or((exit - entry) * side.direction()) {
            p if p > Decimal::ZERO => TradeResult::Win,
            p if p < Decimal::ZERO => TradeResult::Loss,
            _ => TradeResult::Breakeven,
        };
        Trade {
            id: TradeId(id),
            user_id: UserId(1),
            symbol: Symbol::normalize(if id % 2 == 0 { "EURUSD" } else { "XAUUSD" }),
            side,
            entry: Price::new(entry).unwrap(),
            lots: Lots::new_checked(dec!(1)).unwrap(),
            stop_loss: sl.map(|s| Price::new(s).unwrap()),
            take_profit: None,
            status: TradeStatus::Closed,
            opened_at: at(id as u32),
            closed_at: Some(at(id as u32 + 2)),
            exit_price: Some(Price::new(exit).unwrap()),
            close_reason: Some(CloseReason::ManualClose),
            result: Some(result),
            pips: None,
            profit,
            notes: None,
            signal_id: None,
            notification_id: None,
        }
    }

    fn book() -> Vec<Trade> {
        vec![
            // +100, R = 10/5 = 2, return +10%
            closed(1, Side::Long, dec!(100), dec!(110), Some(dec!(95)), Some(dec!(100))),
            // −50, R = −5/5 = −1, return −5%
            closed(2, Side::Long, dec!(100), dec!(95), Some(dec!(95)), Some(dec!(-50))),
            // −30 (short, price rose), no stop loss, return −3%
            closed(3, Side::Short, dec!(100), dec!(103), None, Some(dec!(-30))),
            // +80, no rate known yet: left out of money figures; return +4%
            closed(4, Side::Short, dec!(100), dec!(96), Some(dec!(104)), None),
        ]
    }

    #[test]
    fn the_summary_has_exact_figures() {
        let s = summary(&book());
        assert_eq!((s.closed, s.wins, s.losses, s.breakeven), (4, 2, 2, 0));
        assert_eq!(s.win_rate, Some(dec!(50)));
        assert_eq!(s.total_profit, dec!(20));
        assert_eq!(s.unpriced, 1);
        // 100 / (50 + 30)
        assert_eq!(s.profit_factor, Some(dec!(1.25)));
        // Equity 100, 50, 20: the fall from 100 to 20.
        assert_eq!(s.max_drawdown, dec!(80));
        // R: 2, −1 and (100 − 96) / 4 = 1 → mean 2/3.
        assert_eq!(s.r_trades, 3);
        assert_eq!(s.average_r.unwrap().round_dp(6), dec!(0.666667));
        assert_eq!(s.average_holding_seconds, Some(7200));
        // Returns 0.10, −0.05, −0.03, 0.04: mean 0.015, sample sd √(0.0141 / 3) = 0.0685565…
        let sharpe = s.sharpe.unwrap();
        assert!((sharpe - 0.218_797_487).abs() < 1e-6, "{sharpe}");
    }

    #[test]
    fn curves_follow_close_order_and_drawdown_is_measured_from_the_peak() {
        let equity = equity_curve(&book());
        assert_eq!(equity.iter().map(|p| p.value).collect::<Vec<_>>(), vec![dec!(100), dec!(50), dec!(20)]);
        assert_eq!(equity[0].at, at(3));
        let dd = drawdown(&equity);
        assert_eq!(dd.iter().map(|p| p.value).collect::<Vec<_>>(), vec![dec!(0), dec!(-50), dec!(-80)]);
    }

    #[test]
    fn without_losses_there_is_no_profit_factor_and_one_trade_has_no_sharpe() {
        let one = vec![closed(1, Side::Long, dec!(100), dec!(110), None, Some(dec!(100)))];
        let s = summary(&one);
        assert_eq!(s.profit_factor, None);
        assert_eq!(s.sharpe, None);
        assert_eq!(s.max_drawdown, dec!(0));
        assert_eq!(s.average_r, None);
        assert_eq!(summary(&[]).win_rate, None);
    }

    #[test]
    fn groups_and_calibration_buckets() {
        let trades = book();
        let samples: Vec<Sample<'_>> = trades
            .iter()
            .enumerate()
            .map(|(i, t)| Sample {
                trade: t,
                timeframe: if i < 2 { Some(Timeframe::H1) } else { None },
                confidence: [Some(dec!(0.62)), Some(dec!(0.68)), Some(dec!(0.91)), None][i],
            })
            .collect();
        let pairs = by_pair(&samples);
        assert_eq!(
            pairs.iter().map(|g| (g.key.as_str(), g.closed, g.profit)).collect::<Vec<_>>(),
            vec![("EURUSD", 2, dec!(-50)), ("XAUUSD", 2, dec!(70))]
        );
        let tfs = by_timeframe(&samples);
        assert_eq!(
            tfs.iter().map(|g| (g.key.as_str(), g.win_rate)).collect::<Vec<_>>(),
            vec![("1h", dec!(50)), ("none", dec!(50))]
        );
        let buckets = calibration(&samples);
        assert_eq!(
            buckets,
            vec![
                Bucket { from: 60, closed: 2, predicted: dec!(65), realised: dec!(50) },
                Bucket { from: 90, closed: 1, predicted: dec!(91), realised: dec!(0) },
            ]
        );
    }
}
