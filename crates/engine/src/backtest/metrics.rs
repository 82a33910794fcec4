//! The figures a backtest is judged by, each defined once, here.
//!
//! - `win_rate`: trades whose result is a win (profit in the quote currency above zero), over all trades,
//!   as a fraction in [0, 1]; None with no trades.
//! - `profit_factor`: gross profit over gross loss, both in the account currency over the trades whose
//!   profit is known; None when there is no loss (including no trades).
//! - `net_pips`: the sum of the trades' pips; None for instruments without pips.
//! - `net_profit`: the sum of the known profits in the account currency; `trades_without_rate` counts the
//!   trades left out because no rate converted them.
//! - **Equity curve**: closed-trade equity, the initial balance at the first bar's time and then the balance
//!   after each closed trade at its exit time. Open positions are not marked to market.
//! - `max_drawdown`: the largest fall of that curve from its running peak, in the account currency;
//!   `max_drawdown_pct` the largest such fall as a percentage of the peak it fell from (the two can come
//!   from different stretches).
//! - `sharpe`: per-trade Sharpe ratio, annualised. Positions are a fixed size (no compounding), so each
//!   trade's return is its profit over the initial balance, `r = profit / initial balance`, and
//!   `sharpe = mean(r) / sd(r) × √(trades per year)`, with the sample standard deviation (n − 1), a risk-free
//!   rate of 0, and trades per year = the trades with a known profit / the years from the first bar's time
//!   to the last's (365.25-day years). The balance cancels out: it is the profits' own mean over their
//!   spread, so it stays defined when a losing run takes the balance below zero. None with fewer than two
//!   trades with a known profit, no spread in their profits, or a zero time span.
//! - `avg_r_multiple`: the mean realised R multiple of the trades with a stop loss (profit over initial
//!   risk, see [`super::BacktestTrade::r_multiple`]); `avg_planned_rr`: the mean planned reward:risk,
//!   `|TP − entry| / |entry − SL|`, of the trades with both levels. Both None when no trade qualifies.
//! - `avg_holding_hours`: the mean of exit time − entry time over all trades, both being bar open times
//!   (see [`super::BacktestTrade`]), in hours; `avg_bars_held` the mean of `bars_held`.

use super::{BacktestTrade, ExitReason};
use crate::Bar;
use domain::TradeResult;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

/// One point of the closed-trade equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EquityPoint {
    /// Unix seconds.
    pub time: i64,
    /// Balance in the account currency.
    pub equity: Decimal,
}

/// The summary figures; the module docs define each one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub bars: usize,
    pub trades: usize,
    pub wins: usize,
    pub losses: usize,
    pub win_rate: Option<f64>,
    pub gross_profit: Decimal,
    pub gross_loss: Decimal,
    pub profit_factor: Option<f64>,
    pub net_pips: Option<Decimal>,
    pub net_profit: Decimal,
    pub trades_without_rate: usize,
    pub initial_balance: Decimal,
    pub final_balance: Decimal,
    pub max_drawdown: Decimal,
    pub max_drawdown_pct: f64,
    pub sharpe: Option<f64>,
    pub avg_r_multiple: Option<f64>,
    pub avg_planned_rr: Option<f64>,
    pub avg_holding_hours: Option<f64>,
    pub avg_bars_held: Option<f64>,
    /// Entries not taken because the fill was already past a level.
    pub skipped_entries: usize,
    /// Positions closed at the last bar's close (0 or 1); they are included in `trades`.
    pub closed_at_end: usize,
}

const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    (n > 0).then(|| sum / n as f64)
}

/// The metrics and the closed-trade equity curve of `trades` made over `bars`.
pub(super) fn compute(
    trades: &[BacktestTrade],
    bars: &[Bar],
    initial_balance: Decimal,
    has_pips: bool,
    skipped_entries: usize,
) -> (Metrics, Vec<EquityPoint>) {
    let mut equity = Vec::with_capacity(trades.len() + 1);
    if let Some(first) = bars.first() {
        equity.push(EquityPoint { time: first.time, equity: initial_balance });
    }
    let (mut gross_profit, mut gross_loss) = (Decimal::ZERO, Decimal::ZERO);
    let mut balance = initial_balance;
    let mut returns = Vec::with_capacity(trades.len());
    for t in trades {
        if let Some(p) = t.profit {
            if p > Decimal::ZERO {
                gross_profit += p;
            } else {
                gross_loss -= p;
            }
            if initial_balance > Decimal::ZERO
                && let Some(r) = (p / initial_balance).to_f64()
            {
                returns.push(r);
            }
            balance += p;
        }
        equity.push(EquityPoint { time: t.exit_time, equity: balance });
    }

    let (max_drawdown, max_drawdown_pct) = drawdown(&equity);
    let wins = trades.iter().filter(|t| t.result == TradeResult::Win).count();
    let losses = trades.iter().filter(|t| t.result == TradeResult::Loss).count();
    let span_years = match (bars.first(), bars.last()) {
        (Some(a), Some(b)) => (b.time - a.time) as f64 / SECONDS_PER_YEAR,
        _ => 0.0,
    };
    let sharpe = sharpe(&returns, span_years);
    let net_pips = has_pips.then(|| trades.iter().filter_map(|t| t.pips).sum::<Decimal>());
    let metrics = Metrics {
        bars: bars.len(),
        trades: trades.len(),
        wins,
        losses,
        win_rate: (!trades.is_empty()).then(|| wins as f64 / trades.len() as f64),
        gross_profit,
        gross_loss,
        profit_factor: (gross_loss > Decimal::ZERO).then(|| (gross_profit / gross_loss).to_f64()).flatten(),
        net_pips,
        net_profit: balance - initial_balance,
        trades_without_rate: trades.iter().filter(|t| t.profit.is_none()).count(),
        initial_balance,
        final_balance: balance,
        max_drawdown,
        max_drawdown_pct,
        sharpe,
        avg_r_multiple: mean(trades.iter().filter_map(|t| t.r_multiple)),
        avg_planned_rr: mean(trades.iter().filter_map(|t| t.planned_rr)),
        avg_holding_hours: mean(trades.iter().map(|t| (t.exit_time - t.entry_time) as f64 / 3600.0)),
        avg_bars_held: mean(trades.iter().map(|t| t.bars_held as f64)),
        skipped_entries,
        closed_at_end: trades.iter().filter(|t| t.reason == ExitReason::EndOfData).count(),
    };
    (metrics, equity)
}

/// (largest fall from a running peak, largest fall as a percentage of its peak).
fn drawdown(equity: &[EquityPoint]) -> (Decimal, f64) {
    let mut peak: Option<Decimal> = None;
    let (mut worst, mut worst_pct) = (Decimal::ZERO, 0.0f64);
    for point in equity {
        let top = *peak.get_or_insert(point.equity);
        let top = if point.equity > top {
            peak = Some(point.equity);
            point.equity
        } else {
            top
        };
        let fall = top - point.equity;
        worst = worst.max(fall);
        if top > Decimal::ZERO {
            worst_pct = worst_pct.max((fall / top * Decimal::ONE_HUNDRED).to_f64().unwrap_or(0.0));
        }
    }
    (worst, worst_pct)
}

fn sharpe(returns: &[f64], span_years: f64) -> Option<f64> {
    if returns.len() < 2 || span_years <= 0.0 {
        return None;
    }
    let n = returns.len() as f64;
    let m = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    (sd > 0.0 && sd.is_finite()).then(|| m / sd * (n / span_years).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn point(time: i64, equity: Decimal) -> EquityPoint {
        EquityPoint { time, equity }
    }

    #[test]
    fn drawdown_is_measured_from_the_running_peak() {
        let curve =
            [point(0, dec!(100)), point(1, dec!(120)), point(2, dec!(90)), point(3, dec!(130)), point(4, dec!(110))];
        let (abs, pct) = drawdown(&curve);
        assert_eq!(abs, dec!(30));
        assert!((pct - 25.0).abs() < 1e-12, "{pct}");
        assert_eq!(drawdown(&[point(0, dec!(100)), point(1, dec!(150))]), (Decimal::ZERO, 0.0));
        assert_eq!(drawdown(&[]), (Decimal::ZERO, 0.0));
    }

    #[test]
    fn sharpe_by_hand() {
        // Returns 1% and 3%: mean 2%, sample sd √2 %, 2 trades over one year → 2/√2 × √2 = 2.
        let s = sharpe(&[0.01, 0.03], 1.0).unwrap();
        assert!((s - 2.0).abs() < 1e-12, "{s}");
        assert_eq!(sharpe(&[0.01], 1.0), None);
        assert_eq!(sharpe(&[0.01, 0.01], 1.0), None);
        assert_eq!(sharpe(&[0.01, 0.03], 0.0), None);
    }
}
