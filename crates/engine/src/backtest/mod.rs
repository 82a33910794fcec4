//! The event-driven backtester: feeds bars one at a time to the same [`Strategy`] live scanning uses, and
//! trades what it asks for with the rules a real account would meet.
//!
//! # Rules
//!
//! - **No look-ahead.** The strategy sees bar `t` only once it has closed; whatever it asks for is executed
//!   at the *open* of bar `t + 1`. An action decided on the last bar has no next open and is not executed.
//! - **Bid and ask.** Bars are mid prices by default ([`BarPrice`]); with per-bar spreads (price units, from
//!   a bid/ask file) a long fills at the ask (`open + spread/2`) and exits at the bid (`price − spread/2`),
//!   a short the mirror. Bar `t`'s spread applies to every price of bar `t`. Without spreads, at the price.
//! - **Stop loss and take profit** are absolute levels from the [`Intent`], rounded to the instrument's
//!   precision. They are checked on every bar from the fill bar on (the fill bar's high and low count, as
//!   they come after its open), against the side the position closes at: bid lows and highs for a long, ask
//!   ones for a short. A bar that opens beyond a level closes the position at that open (a gap; the stop
//!   loss first if it opened beyond both). Otherwise a touched level fills at the level, and when one bar
//!   touches both the stop loss counts, because the order inside the bar is unknown (the conservative rule).
//! - **Skipped entries.** An entry whose fill price is already at or beyond its stop loss or take profit
//!   (the market moved past the level between the signal's close and the next open) is not taken, and is
//!   counted in [`Metrics::skipped_entries`]. A `Reverse` still closes the old position in that case.
//! - **`Enter`** is ignored while a position is open; **`Reverse`** closes any open position at the next
//!   open (reason `reverse`) and opens the new side at that same open, even when it is the same side, so
//!   every stop-and-reverse signal is one trade. **`Exit`** closes at the next open (reason `exit`).
//! - **End of data.** A position still open after the last bar is closed at that bar's close (reason
//!   `end_of_data`) and counted as a trade like any other, so the metrics account for every position taken.
//! - **Money** follows the domain's rules ([`domain::pnl::outcome`]): pips and profit from prices rounded to
//!   the instrument's precision, profit converted to the account currency at the exit price. A cross with
//!   no conversion rate has no profit; such trades count in `trades` and `win_rate` but add nothing to the
//!   balance, and [`Metrics::trades_without_rate`] says how many there were.
//!
//! See [`metrics`] for the exact definition of every figure.

pub mod metrics;

use crate::{Bar, strategy::Action, strategy::Intent, strategy::Strategy};
use domain::{Instrument, Lots, Price, RateBook, Side, TradeResult, pnl};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

pub use metrics::{EquityPoint, Metrics};

/// Which price the bars carry, so the bid and ask can be rebuilt from the spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BarPrice {
    /// Halfway between bid and ask: bid = price − spread/2, ask = price + spread/2.
    #[default]
    Mid,
    /// The bid: ask = price + spread.
    Bid,
    /// The ask: bid = price − spread.
    Ask,
}

impl BarPrice {
    /// (share of the spread below the bar price that is the bid, share above that is the ask).
    fn offsets(self) -> (f64, f64) {
        match self {
            BarPrice::Mid => (0.5, 0.5),
            BarPrice::Bid => (0.0, 1.0),
            BarPrice::Ask => (1.0, 0.0),
        }
    }
}

/// The account a backtest trades.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Size of every position.
    pub lots: Lots,
    /// Currency profits are reported in.
    pub account_currency: String,
    pub initial_balance: Decimal,
    /// Rates for converting a cross's profit into the account currency; empty by default, so a cross such
    /// as EURGBP has no profit in USD (see [`Metrics::trades_without_rate`]).
    pub rates: RateBook,
    pub bar_price: BarPrice,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            lots: Lots::new_checked(Decimal::ONE).expect("one lot is within bounds"),
            account_currency: "USD".to_string(),
            initial_balance: Decimal::from(10_000),
            rates: RateBook::default(),
            bar_price: BarPrice::Mid,
        }
    }
}

/// Why a backtest position was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ExitReason {
    #[serde(rename = "sl_hit")]
    StopLoss,
    #[serde(rename = "tp_hit")]
    TakeProfit,
    /// The strategy asked to exit.
    #[serde(rename = "exit")]
    Exit,
    /// The strategy reversed: closed here and opened the other way at the same open.
    #[serde(rename = "reverse")]
    Reverse,
    /// Still open after the last bar; closed at its close.
    #[serde(rename = "end_of_data")]
    EndOfData,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::StopLoss => "sl_hit",
            ExitReason::TakeProfit => "tp_hit",
            ExitReason::Exit => "exit",
            ExitReason::Reverse => "reverse",
            ExitReason::EndOfData => "end_of_data",
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One closed backtest position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestTrade {
    pub side: Side,
    /// Open time (Unix seconds) of the bar whose open filled the entry.
    pub entry_time: i64,
    /// Open time of the bar the exit happened in: at its open, inside it (a level), or at its close (end
    /// of data).
    pub exit_time: i64,
    /// Index of the fill bar in the input.
    pub entry_bar: usize,
    /// Index of the bar the exit happened in.
    pub exit_bar: usize,
    pub entry: Price,
    pub exit: Price,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub reason: ExitReason,
    /// None for instruments without pips.
    pub pips: Option<Decimal>,
    /// In the account currency; None when no rate converts the quote currency (a cross).
    pub profit: Option<Decimal>,
    /// In the quote currency, always known.
    pub profit_quote: Decimal,
    pub result: TradeResult,
    /// Profit over the initial risk, `(exit − entry) × direction / |entry − stop loss|`: the same as profit
    /// over the money the stop loss put at risk, in the quote currency so no conversion rate distorts it.
    /// None without a stop loss.
    pub r_multiple: Option<f64>,
    /// `|take profit − entry| / |entry − stop loss|` as planned at the fill; None unless both levels exist.
    pub planned_rr: Option<f64>,
    /// Bars the position was exposed to: from the fill bar up to the exit bar, counting the exit bar unless
    /// the exit was at its open.
    pub bars_held: usize,
}

/// Everything a backtest produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestResult {
    pub strategy: String,
    pub trades: Vec<BacktestTrade>,
    pub metrics: Metrics,
    /// The closed-trade equity curve: the initial balance at the first bar, then one point per closed trade.
    pub equity: Vec<EquityPoint>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BacktestError {
    #[error("{spreads} spreads for {bars} bars: there must be exactly one spread per bar")]
    SpreadCount { spreads: usize, bars: usize },
    #[error("bar {bar}: spread {spread} is not a finite, non-negative price distance")]
    BadSpread { bar: usize, spread: f64 },
    #[error("bar {bar}: the {what} {value} is not a valid price for {symbol}")]
    BadPrice { bar: usize, what: &'static str, value: f64, symbol: String },
}

/// An open position, its levels both as `Price` (for money) and as `f64` (for the per-bar checks), the
/// latter taken from the rounded price so the check and the fill agree.
#[derive(Debug, Clone, Copy)]
struct Position {
    side: Side,
    entry: Price,
    entry_bar: usize,
    stop_loss: Option<(Price, f64)>,
    take_profit: Option<(Price, f64)>,
}

struct Run<'a> {
    instrument: &'a Instrument,
    config: &'a BacktestConfig,
    bars: &'a [Bar],
    spreads: Option<&'a [f64]>,
    bid_share: f64,
    ask_share: f64,
    trades: Vec<BacktestTrade>,
    skipped_entries: usize,
}

impl Run<'_> {
    fn spread(&self, i: usize) -> f64 {
        self.spreads.map_or(0.0, |s| s[i])
    }

    /// The price a position on `side` closes at, given bar `i`'s price `p`: the bid for a long.
    fn exit_quote(&self, side: Side, i: usize, p: f64) -> f64 {
        match side {
            Side::Long => p - self.bid_share * self.spread(i),
            Side::Short => p + self.ask_share * self.spread(i),
        }
    }

    /// The price a position on `side` opens at: the ask for a long.
    fn entry_quote(&self, side: Side, i: usize, p: f64) -> f64 {
        self.exit_quote(side.opposite(), i, p)
    }

    /// `value` rounded to the instrument's precision (half away from zero), as a `Price`.
    fn price(&self, bar: usize, what: &'static str, value: f64) -> Result<Price, BacktestError> {
        let bad = || BacktestError::BadPrice { bar, what, value, symbol: self.instrument.symbol.to_string() };
        let places = self.instrument.price_precision;
        let scaled = (value * 10f64.powi(places as i32)).round();
        // Rounding the scaled f64 picks the same price step as decimal rounding would, except within an ulp
        // of a half step, where a binary price is ambiguous anyway; it is far cheaper than
        // `Decimal::from_f64`, which spells out every binary digit. Beyond 2^53 steps, take the slow road.
        let rounded = if scaled.abs() < 9.0e15 {
            Decimal::new(scaled as i64, places)
        } else {
            Decimal::from_f64(value)
                .ok_or_else(bad)?
                .round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero)
        };
        Price::new(rounded).map_err(|_| bad())
    }

    fn level(&self, bar: usize, what: &'static str, value: Option<f64>) -> Result<Option<(Price, f64)>, BacktestError> {
        value
            .map(|v| {
                let p = self.price(bar, what, v)?;
                Ok((p, p.value().to_f64().unwrap_or(v)))
            })
            .transpose()
    }

    /// Opens `intent` at bar `i`'s open, or counts it as skipped when the fill is already past a level.
    fn open(&mut self, i: usize, intent: &Intent) -> Result<Option<Position>, BacktestError> {
        let fill = self.entry_quote(intent.side, i, self.bars[i].open);
        let entry = self.price(i, "entry", fill)?;
        let stop_loss = self.level(i, "stop loss", intent.stop_loss)?;
        let take_profit = self.level(i, "take profit", intent.take_profit)?;
        if domain::trade::check_levels(intent.side, entry, stop_loss.map(|l| l.0), take_profit.map(|l| l.0)).is_err() {
            self.skipped_entries += 1;
            return Ok(None);
        }
        Ok(Some(Position { side: intent.side, entry, entry_bar: i, stop_loss, take_profit }))
    }

    fn close(&mut self, position: Position, bar: usize, exit: Price, reason: ExitReason, at_open: bool) {
        let config = self.config;
        let o = pnl::outcome(
            self.instrument,
            position.side,
            position.entry,
            exit,
            config.lots,
            &config.rates,
            &config.account_currency,
        );
        let risk = position.stop_loss.map(|(sl, _)| (position.entry.value() - sl.value()).abs());
        let ratio = |num: Decimal, den: Decimal| (num / den).to_f64();
        let r_multiple = risk.and_then(|r| ratio(o.price_change, r));
        let planned_rr = match (risk, position.take_profit) {
            (Some(r), Some((tp, _))) => ratio((tp.value() - position.entry.value()).abs(), r),
            _ => None,
        };
        self.trades.push(BacktestTrade {
            side: position.side,
            entry_time: self.bars[position.entry_bar].time,
            exit_time: self.bars[bar].time,
            entry_bar: position.entry_bar,
            exit_bar: bar,
            entry: position.entry,
            exit,
            stop_loss: position.stop_loss.map(|l| l.0),
            take_profit: position.take_profit.map(|l| l.0),
            reason,
            pips: o.pips,
            profit: o.profit,
            profit_quote: o.profit_quote,
            result: o.result,
            r_multiple,
            planned_rr,
            bars_held: bar - position.entry_bar + usize::from(!at_open),
        });
    }

    fn close_at_open(&mut self, position: Position, i: usize, reason: ExitReason) -> Result<(), BacktestError> {
        let exit = self.price(i, "exit", self.exit_quote(position.side, i, self.bars[i].open))?;
        self.close(position, i, exit, reason, true);
        Ok(())
    }

    /// Applies bar `i`'s range to an open position; returns it if it survived the bar.
    fn apply_levels(&mut self, position: Position, i: usize) -> Result<Option<Position>, BacktestError> {
        if position.stop_loss.is_none() && position.take_profit.is_none() {
            return Ok(Some(position));
        }
        let bar = self.bars[i];
        let side = position.side;
        let open = self.exit_quote(side, i, bar.open);
        // The extreme that goes against the position, and the one that goes for it.
        let (worst, best) = match side {
            Side::Long => (self.exit_quote(side, i, bar.low), self.exit_quote(side, i, bar.high)),
            Side::Short => (self.exit_quote(side, i, bar.high), self.exit_quote(side, i, bar.low)),
        };
        // Whether `a` is at or past `b` in the direction that hurts the position.
        let against = |a: f64, b: f64| match side {
            Side::Long => a <= b,
            Side::Short => a >= b,
        };
        let sl = position.stop_loss;
        let tp = position.take_profit;
        let (reason, exit) = if sl.is_some_and(|(_, l)| against(open, l)) {
            (ExitReason::StopLoss, self.price(i, "exit", open)?)
        } else if tp.is_some_and(|(_, l)| against(l, open)) {
            (ExitReason::TakeProfit, self.price(i, "exit", open)?)
        } else if let Some((level, _)) = sl.filter(|(_, l)| against(worst, *l)) {
            (ExitReason::StopLoss, level)
        } else if let Some((level, _)) = tp.filter(|(_, l)| against(*l, best)) {
            (ExitReason::TakeProfit, level)
        } else {
            return Ok(Some(position));
        };
        self.close(position, i, exit, reason, false);
        Ok(None)
    }

    /// Executes at bar `i`'s open what the strategy decided at the previous close.
    fn execute(
        &mut self,
        i: usize,
        action: Action,
        position: Option<Position>,
    ) -> Result<Option<Position>, BacktestError> {
        Ok(match action {
            Action::Hold => position,
            Action::Enter(intent) => match position {
                Some(open) => Some(open),
                None => self.open(i, &intent)?,
            },
            Action::Reverse(intent) => {
                if let Some(open) = position {
                    self.close_at_open(open, i, ExitReason::Reverse)?;
                }
                self.open(i, &intent)?
            }
            Action::Exit => {
                if let Some(open) = position {
                    self.close_at_open(open, i, ExitReason::Exit)?;
                }
                None
            }
        })
    }
}

/// Runs `strategy` over `bars` (in time order) and reports every trade and the metrics.
///
/// `spreads`, when given, holds one spread per bar in price units (`ask − bid`). The strategy is used as
/// it is: pass a fresh one for a fresh run.
pub fn run(
    strategy: &mut dyn Strategy,
    instrument: &Instrument,
    bars: &[Bar],
    spreads: Option<&[f64]>,
    config: &BacktestConfig,
) -> Result<BacktestResult, BacktestError> {
    if let Some(s) = spreads {
        if s.len() != bars.len() {
            return Err(BacktestError::SpreadCount { spreads: s.len(), bars: bars.len() });
        }
        if let Some((bar, &spread)) = s.iter().enumerate().find(|(_, x)| !(x.is_finite() && **x >= 0.0)) {
            return Err(BacktestError::BadSpread { bar, spread });
        }
    }
    let (bid_share, ask_share) = config.bar_price.offsets();
    let mut run =
        Run { instrument, config, bars, spreads, bid_share, ask_share, trades: Vec::new(), skipped_entries: 0 };
    let mut position: Option<Position> = None;
    let mut pending = Action::Hold;
    for (i, bar) in bars.iter().enumerate() {
        if pending != Action::Hold {
            position = run.execute(i, std::mem::replace(&mut pending, Action::Hold), position)?;
        }
        if let Some(open) = position {
            position = run.apply_levels(open, i)?;
        }
        pending = strategy.on_bar(bar, position.map(|p| p.side));
    }
    // `pending` now holds what the strategy decided on the last bar: there is no next open to execute it at.
    if let Some(open) = position {
        let last = bars.len() - 1;
        let exit = run.price(last, "exit", run.exit_quote(open.side, last, bars[last].close))?;
        run.close(open, last, exit, ExitReason::EndOfData, false);
    }
    let (metrics, equity) =
        metrics::compute(&run.trades, bars, config.initial_balance, instrument.pip_size.is_some(), run.skipped_entries);
    Ok(BacktestResult { strategy: strategy.name().to_string(), trades: run.trades, metrics, equity })
}

#[cfg(test)]
mod tests;
