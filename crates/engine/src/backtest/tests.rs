//! Hand-made bars whose every fill can be worked out on paper.

use super::*;
use crate::strategies::SmaCross;
use domain::InstrumentRegistry;
use rust_decimal_macros::dec;

const HOUR: i64 = 3600;

fn bar(i: i64, open: f64, high: f64, low: f64, close: f64) -> Bar {
    Bar { time: i * HOUR, open, high, low, close, volume: 0.0 }
}

/// A flat bar at `p`.
fn flat(i: i64, p: f64) -> Bar {
    bar(i, p, p, p, p)
}

fn instrument(symbol: &str) -> &'static Instrument {
    InstrumentRegistry::global().get(symbol).unwrap()
}

fn eurusd() -> &'static Instrument {
    instrument("EURUSD")
}

fn price(v: Decimal) -> Price {
    Price::new(v).unwrap()
}

/// Plays a fixed list of actions, one per bar, and records what it was shown.
#[derive(Debug, Default)]
struct Script {
    actions: Vec<Action>,
    seen: Vec<(i64, Option<Side>)>,
}

impl Script {
    fn new(actions: impl IntoIterator<Item = (usize, Action)>) -> Script {
        let mut list = Vec::new();
        for (i, a) in actions {
            if list.len() <= i {
                list.resize(i + 1, Action::Hold);
            }
            list[i] = a;
        }
        Script { actions: list, seen: Vec::new() }
    }
}

impl Strategy for Script {
    fn name(&self) -> &str {
        "script"
    }

    fn on_bar(&mut self, bar: &Bar, position: Option<Side>) -> Action {
        let i = self.seen.len();
        self.seen.push((bar.time, position));
        self.actions.get(i).copied().unwrap_or(Action::Hold)
    }
}

fn intent(side: Side, stop_loss: Option<f64>, take_profit: Option<f64>) -> Intent {
    Intent { side, stop_loss, take_profit, confidence: None }
}

fn enter(side: Side, sl: Option<f64>, tp: Option<f64>) -> Action {
    Action::Enter(intent(side, sl, tp))
}

fn reverse(side: Side) -> Action {
    Action::Reverse(intent(side, None, None))
}

fn backtest(strategy: &mut dyn Strategy, bars: &[Bar]) -> BacktestResult {
    run(strategy, eurusd(), bars, None, &BacktestConfig::default()).unwrap()
}

#[test]
fn an_action_fills_at_the_next_open() {
    let bars = [
        bar(0, 1.1000, 1.1010, 1.0990, 1.1005),
        bar(1, 1.1010, 1.1030, 1.1000, 1.1020),
        bar(2, 1.1025, 1.1040, 1.1015, 1.1030),
        flat(3, 1.1030),
    ];
    let mut s = Script::new([(0, enter(Side::Long, None, None)), (1, Action::Exit)]);
    let r = backtest(&mut s, &bars);
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    // Decided at bar 0's close (1.1005), filled at bar 1's open; the exit decided at bar 1, at bar 2's open.
    assert_eq!((t.entry.value(), t.exit.value()), (dec!(1.1010), dec!(1.1025)));
    assert_eq!((t.entry_time, t.exit_time, t.entry_bar, t.exit_bar), (HOUR, 2 * HOUR, 1, 2));
    assert_eq!((t.reason, t.bars_held), (ExitReason::Exit, 1));
    assert_eq!(t.pips, Some(dec!(15)));
    assert_eq!(t.profit, Some(dec!(150)));
    assert_eq!(t.r_multiple, None);
    // The strategy sees the position that is open at each close.
    assert_eq!(s.seen, vec![(0, None), (HOUR, Some(Side::Long)), (2 * HOUR, None), (3 * HOUR, None)]);
    assert_eq!(r.metrics.net_pips, Some(dec!(15)));
    assert_eq!(r.metrics.net_profit, dec!(150));
    assert_eq!(r.metrics.final_balance, dec!(10150));
    assert_eq!(r.metrics.avg_holding_hours, Some(1.0));
    assert_eq!(r.metrics.closed_at_end, 0);
    assert_eq!(r.strategy, "script");
}

#[test]
fn an_action_on_the_last_bar_is_not_executed() {
    let bars = [flat(0, 1.1), flat(1, 1.1)];
    let r = backtest(&mut Script::new([(1, enter(Side::Long, None, None))]), &bars);
    assert!(r.trades.is_empty());
    assert_eq!(r.metrics.trades, 0);
    assert_eq!(r.metrics.win_rate, None);
    assert_eq!(r.metrics.net_pips, Some(Decimal::ZERO));
}

/// Knows the future (it was handed every bar) and buys before each rise. It still fills at the next open,
/// never at the close it decided on, so its foresight buys nothing the next open has not already priced.
#[derive(Debug)]
struct Peeker {
    future: Vec<Bar>,
    seen: usize,
}

impl Strategy for Peeker {
    fn name(&self) -> &str {
        "peeker"
    }

    fn on_bar(&mut self, bar: &Bar, position: Option<Side>) -> Action {
        self.seen += 1;
        let next = self.future.get(self.seen);
        match (position, next) {
            (None, Some(n)) if n.close > bar.close => enter(Side::Long, None, None),
            (Some(_), Some(n)) if n.close <= bar.close => Action::Exit,
            _ => Action::Hold,
        }
    }
}

#[test]
fn no_look_ahead_a_peeking_strategy_fills_at_the_next_open() {
    // Each bar opens where the previous one closed plus a jump, so the close a strategy decides on is never
    // the price it gets.
    let bars = [
        bar(0, 1.1000, 1.1000, 1.1000, 1.1000),
        bar(1, 1.1050, 1.1100, 1.1050, 1.1100),
        bar(2, 1.1150, 1.1200, 1.1150, 1.1200),
        bar(3, 1.1150, 1.1150, 1.1100, 1.1100),
        bar(4, 1.1000, 1.1000, 1.1000, 1.1000),
    ];
    let mut s = Peeker { future: bars.to_vec(), seen: 0 };
    let r = backtest(&mut s, &bars);
    assert_eq!(r.trades.len(), 1);
    let t = &r.trades[0];
    assert_eq!(t.entry.value(), dec!(1.105), "entry is bar 1's open, not bar 0's close");
    assert_eq!(t.exit.value(), dec!(1.115), "exit is bar 3's open, not bar 2's close");
    assert_eq!(t.pips, Some(dec!(100)));
}

#[test]
fn stop_loss_counts_when_a_bar_touches_both_levels() {
    let bars = [flat(0, 1.1000), flat(1, 1.1000), bar(2, 1.1000, 1.1060, 1.0940, 1.1000), flat(3, 1.1)];
    let mut s = Script::new([(0, enter(Side::Long, Some(1.0950), Some(1.1050)))]);
    let r = backtest(&mut s, &bars);
    let t = &r.trades[0];
    assert_eq!((t.reason, t.exit.value()), (ExitReason::StopLoss, dec!(1.095)));
    assert_eq!((t.pips, t.profit), (Some(dec!(-50)), Some(dec!(-500))));
    assert_eq!(t.r_multiple, Some(-1.0));
    assert_eq!(t.planned_rr, Some(1.0));
    assert_eq!((t.exit_bar, t.bars_held), (2, 2));
    assert_eq!(t.stop_loss, Some(price(dec!(1.095))));
    assert_eq!(r.metrics.avg_r_multiple, Some(-1.0));
    // The strategy is told the position is gone at the close of the bar that stopped it out.
    assert_eq!(s.seen[2].1, None);
}

#[test]
fn take_profit_at_the_level_and_levels_checked_on_the_fill_bar() {
    // The fill bar itself reaches the take profit after its open.
    let bars = [flat(0, 1.1000), bar(1, 1.1000, 1.1080, 1.0990, 1.1070), flat(2, 1.1)];
    let mut s = Script::new([(0, enter(Side::Long, Some(1.0950), Some(1.1075)))]);
    let r = backtest(&mut s, &bars);
    let t = &r.trades[0];
    assert_eq!((t.reason, t.exit.value(), t.exit_bar, t.bars_held), (ExitReason::TakeProfit, dec!(1.1075), 1, 1));
    assert_eq!(t.r_multiple, Some(1.5));
    assert_eq!(t.planned_rr, Some(1.5));
    assert_eq!(t.profit, Some(dec!(750)));
}

#[test]
fn gaps_fill_at_the_open() {
    // A long whose stop loss the market gaps through, then a long whose take profit it gaps through.
    let bars = [
        flat(0, 1.1000),
        flat(1, 1.1000),
        bar(2, 1.0900, 1.0920, 1.0880, 1.0900),
        flat(3, 1.1000),
        bar(4, 1.1100, 1.1120, 1.1000, 1.1100),
        flat(5, 1.1100),
    ];
    let sl_tp = enter(Side::Long, Some(1.0950), Some(1.1050));
    let r = backtest(&mut Script::new([(0, sl_tp), (2, sl_tp)]), &bars);
    assert_eq!(r.trades.len(), 2);
    let (a, b) = (&r.trades[0], &r.trades[1]);
    assert_eq!((a.reason, a.exit.value(), a.pips), (ExitReason::StopLoss, dec!(1.09), Some(dec!(-100))));
    assert_eq!(a.r_multiple, Some(-2.0));
    assert_eq!((b.entry.value(), b.reason, b.exit.value()), (dec!(1.1), ExitReason::TakeProfit, dec!(1.11)));
    assert_eq!(b.r_multiple, Some(2.0));
}

#[test]
fn a_bar_opening_beyond_the_take_profit_fills_it_even_if_it_then_touches_the_stop() {
    // The bar opens beyond the take profit and then falls through the stop loss: the take profit was
    // reached first, at the open, so there is nothing ambiguous for the conservative rule to settle.
    let bars = [flat(0, 1.1), flat(1, 1.1), bar(2, 1.1100, 1.1100, 1.0900, 1.0950), flat(3, 1.1)];
    let r = backtest(&mut Script::new([(0, enter(Side::Long, Some(1.0950), Some(1.1050)))]), &bars);
    assert_eq!((r.trades[0].reason, r.trades[0].exit.value()), (ExitReason::TakeProfit, dec!(1.11)));
}

#[test]
fn shorts_mirror_longs() {
    let bars = [
        flat(0, 1.1000),
        flat(1, 1.1000),
        bar(2, 1.1000, 1.1060, 1.0940, 1.1000), // touches both: stop loss
        flat(3, 1.1000),
        bar(4, 1.0900, 1.0900, 1.0800, 1.0850), // opens below the take profit: filled at the open
        flat(5, 1.1000),
        bar(6, 1.1100, 1.1100, 1.1100, 1.1100), // opens above the stop loss: filled at the open
        flat(7, 1.1),
    ];
    let short = enter(Side::Short, Some(1.1050), Some(1.0950));
    let r = backtest(&mut Script::new([(0, short), (2, short), (4, short)]), &bars);
    let got: Vec<_> = r.trades.iter().map(|t| (t.side, t.reason, t.exit.value(), t.pips)).collect();
    assert_eq!(
        got,
        vec![
            (Side::Short, ExitReason::StopLoss, dec!(1.105), Some(dec!(-50))),
            (Side::Short, ExitReason::TakeProfit, dec!(1.09), Some(dec!(100))),
            (Side::Short, ExitReason::StopLoss, dec!(1.11), Some(dec!(-100))),
        ]
    );
    assert_eq!(r.trades[1].profit, Some(dec!(1000)));
    assert_eq!(r.trades[2].r_multiple, Some(-2.0));
}

#[test]
fn spreads_fill_longs_at_the_ask_and_close_them_at_the_bid() {
    // Mid prices with a 2-pip spread: ask = mid + 0.0001, bid = mid − 0.0001.
    let bars = [flat(0, 1.1000), flat(1, 1.1000), bar(2, 1.1010, 1.1020, 1.0955, 1.1000), flat(3, 1.1)];
    let spreads = [0.0002; 4];
    let config = BacktestConfig::default();
    let long = enter(Side::Long, Some(1.09545), None);
    let r = run(&mut Script::new([(0, long)]), eurusd(), &bars, Some(&spreads), &config).unwrap();
    let t = &r.trades[0];
    assert_eq!(t.entry.value(), dec!(1.1001), "a long buys at the ask");
    // Bar 2's bid low is 1.0954: the stop is hit on the bid even though the mid never reached it.
    assert_eq!((t.reason, t.exit.value()), (ExitReason::StopLoss, dec!(1.09545)));
    let without = backtest(&mut Script::new([(0, long)]), &bars);
    assert_eq!(without.trades[0].reason, ExitReason::EndOfData, "on mid prices the stop is not reached");

    // A short sells at the bid and buys back at the ask.
    let mut s = Script::new([(0, enter(Side::Short, None, None)), (1, Action::Exit)]);
    let r = run(&mut s, eurusd(), &bars, Some(&spreads), &config).unwrap();
    let t = &r.trades[0];
    assert_eq!((t.entry.value(), t.exit.value()), (dec!(1.0999), dec!(1.1011)), "a short sells at the bid");
    // Bar 2 opens at 1.1010 mid: the short buys back at the ask, 1.1011.
    assert_eq!(t.pips, Some(dec!(-12)));
}

#[test]
fn short_stops_are_checked_on_the_ask() {
    // Bar 2's mid high 1.1044 stays below the stop; its ask high, 1.1045, does not.
    let bars = [flat(0, 1.1000), flat(1, 1.1000), bar(2, 1.1000, 1.1044, 1.0990, 1.1000), flat(3, 1.1)];
    let spreads = [0.0002; 4];
    let short = enter(Side::Short, Some(1.10445), None);
    let r = run(&mut Script::new([(0, short)]), eurusd(), &bars, Some(&spreads), &BacktestConfig::default()).unwrap();
    assert_eq!((r.trades[0].reason, r.trades[0].exit.value()), (ExitReason::StopLoss, dec!(1.10445)));
}

#[test]
fn bid_bars_rebuild_the_ask_from_the_whole_spread() {
    let bars = [flat(0, 1.1000), flat(1, 1.1000), flat(2, 1.1010)];
    let spreads = [0.0002; 3];
    let config = BacktestConfig { bar_price: BarPrice::Bid, ..BacktestConfig::default() };
    let r =
        run(&mut Script::new([(0, enter(Side::Long, None, None))]), eurusd(), &bars, Some(&spreads), &config).unwrap();
    assert_eq!((r.trades[0].entry.value(), r.trades[0].exit.value()), (dec!(1.1002), dec!(1.101)));
    let config = BacktestConfig { bar_price: BarPrice::Ask, ..BacktestConfig::default() };
    let r =
        run(&mut Script::new([(0, enter(Side::Long, None, None))]), eurusd(), &bars, Some(&spreads), &config).unwrap();
    assert_eq!((r.trades[0].entry.value(), r.trades[0].exit.value()), (dec!(1.1), dec!(1.1008)));
}

#[test]
fn reverse_closes_and_opens_the_other_way_at_the_same_open() {
    let bars = [flat(0, 1.1000), flat(1, 1.1000), flat(2, 1.1050), flat(3, 1.1020), flat(4, 1.1000)];
    let mut s = Script::new([(0, reverse(Side::Long)), (2, reverse(Side::Short))]);
    let r = backtest(&mut s, &bars);
    let got: Vec<_> = r.trades.iter().map(|t| (t.side, t.entry.value(), t.exit.value(), t.reason)).collect();
    assert_eq!(
        got,
        vec![
            (Side::Long, dec!(1.1), dec!(1.102), ExitReason::Reverse),
            (Side::Short, dec!(1.102), dec!(1.1), ExitReason::EndOfData),
        ]
    );
    assert_eq!(r.trades[0].bars_held, 2);
    assert_eq!(s.seen[3].1, Some(Side::Short));
    assert_eq!(r.metrics.closed_at_end, 1);
    assert_eq!(r.metrics.net_pips, Some(dec!(40)));
}

#[test]
fn reverse_to_the_same_side_is_a_new_trade_and_enter_is_ignored_while_open() {
    let bars = [flat(0, 1.1000), flat(1, 1.1000), flat(2, 1.1010), flat(3, 1.1020), flat(4, 1.1030)];
    let mut s = Script::new([(0, reverse(Side::Long)), (1, enter(Side::Short, None, None)), (2, reverse(Side::Long))]);
    let r = backtest(&mut s, &bars);
    let got: Vec<_> = r.trades.iter().map(|t| (t.side, t.entry.value(), t.exit.value(), t.reason)).collect();
    assert_eq!(
        got,
        vec![
            (Side::Long, dec!(1.1), dec!(1.102), ExitReason::Reverse),
            (Side::Long, dec!(1.102), dec!(1.103), ExitReason::EndOfData),
        ]
    );
}

#[test]
fn a_position_open_at_the_end_closes_at_the_last_close_on_its_exit_side() {
    let bars = [flat(0, 1.1000), bar(1, 1.1000, 1.1100, 1.0990, 1.1050)];
    let spreads = [0.0002, 0.0004];
    let r = run(
        &mut Script::new([(0, enter(Side::Long, None, None))]),
        eurusd(),
        &bars,
        Some(&spreads),
        &BacktestConfig::default(),
    )
    .unwrap();
    let t = &r.trades[0];
    // Bar 1's spread applies to bar 1: ask open 1.1002, bid close 1.1048.
    assert_eq!((t.entry.value(), t.exit.value(), t.reason), (dec!(1.1002), dec!(1.1048), ExitReason::EndOfData));
    assert_eq!((t.exit_bar, t.bars_held), (1, 1));
    assert_eq!((r.metrics.trades, r.metrics.closed_at_end), (1, 1));
}

#[test]
fn an_entry_already_past_its_level_at_the_open_is_skipped_and_counted() {
    let bars = [flat(0, 1.1000), flat(1, 1.0940), flat(2, 1.1060), flat(3, 1.1)];
    let long = enter(Side::Long, Some(1.0950), Some(1.1050));
    let r = backtest(&mut Script::new([(0, long), (1, long)]), &bars);
    assert!(r.trades.is_empty());
    assert_eq!(r.metrics.skipped_entries, 2);
    // A reverse whose new side is skipped still closes the old position.
    let mut s = Script::new([(0, reverse(Side::Short)), (1, Action::Reverse(intent(Side::Long, Some(1.2), None)))]);
    let r = backtest(&mut s, &bars);
    assert_eq!(r.trades.len(), 1);
    assert_eq!((r.trades[0].side, r.trades[0].reason), (Side::Short, ExitReason::Reverse));
    assert_eq!(r.metrics.skipped_entries, 1);
}

#[test]
fn usdjpy_profit_is_converted_at_the_exit_price() {
    let bars = [flat(0, 150.0), flat(1, 150.0), flat(2, 150.5)];
    let mut s = Script::new([(0, enter(Side::Long, None, None)), (1, Action::Exit)]);
    let r = run(&mut s, instrument("USDJPY"), &bars, None, &BacktestConfig::default()).unwrap();
    let t = &r.trades[0];
    assert_eq!((t.pips, t.profit_quote, t.profit), (Some(dec!(50)), dec!(50000), Some(dec!(332.23))));
    assert_eq!(r.metrics.net_profit, dec!(332.23));
}

#[test]
fn lots_scale_the_money_not_the_pips() {
    let bars = [flat(0, 1.0854), flat(1, 1.0854), flat(2, 1.0962)];
    let config = BacktestConfig { lots: Lots::new_checked(dec!(0.5)).unwrap(), ..BacktestConfig::default() };
    let mut s = Script::new([(0, enter(Side::Long, None, None)), (1, Action::Exit)]);
    let r = run(&mut s, eurusd(), &bars, None, &config).unwrap();
    assert_eq!((r.trades[0].pips, r.trades[0].profit), (Some(dec!(108)), Some(dec!(540))));
}

#[test]
fn a_cross_without_a_rate_has_no_profit_and_is_counted() {
    let bars = [flat(0, 0.86), flat(1, 0.86), flat(2, 0.85), flat(3, 0.85)];
    let mut s = Script::new([(0, enter(Side::Short, None, None)), (1, Action::Exit)]);
    let r = run(&mut s, instrument("EURGBP"), &bars, None, &BacktestConfig::default()).unwrap();
    assert_eq!((r.trades[0].profit, r.trades[0].result), (None, TradeResult::Win));
    assert_eq!((r.metrics.trades_without_rate, r.metrics.net_profit), (1, Decimal::ZERO));
    assert_eq!(r.metrics.net_pips, Some(dec!(100)));
    assert_eq!(r.metrics.win_rate, Some(1.0));
    let mut rates = RateBook::default();
    rates.set("GBPUSD", dec!(1.25));
    let config = BacktestConfig { rates, ..BacktestConfig::default() };
    let mut s = Script::new([(0, enter(Side::Short, None, None)), (1, Action::Exit)]);
    let r = run(&mut s, instrument("EURGBP"), &bars, None, &config).unwrap();
    assert_eq!((r.trades[0].profit, r.metrics.trades_without_rate), (Some(dec!(1250)), 0));
}

#[test]
fn instruments_without_pips_report_no_pips() {
    let bars = [flat(0, 40000.0), flat(1, 40000.0), flat(2, 41000.0)];
    let r = run(&mut Script::new([(0, reverse(Side::Long))]), instrument("BTCUSDT"), &bars, None, &Default::default())
        .unwrap();
    assert_eq!((r.trades[0].pips, r.metrics.net_pips), (None, None));
    assert_eq!(r.trades[0].profit, Some(dec!(1000)));
}

#[test]
fn profit_factor_is_none_without_losses() {
    let bars = [flat(0, 1.10), flat(1, 1.10), flat(2, 1.11), flat(3, 1.12), flat(4, 1.13)];
    let mut s =
        Script::new([(0, enter(Side::Long, None, None)), (1, Action::Exit), (2, enter(Side::Long, None, None))]);
    let r = backtest(&mut s, &bars);
    assert_eq!(r.metrics.trades, 2);
    assert_eq!(r.metrics.profit_factor, None);
    assert_eq!(r.metrics.win_rate, Some(1.0));
    assert_eq!(r.metrics.gross_profit, dec!(2000));
}

#[test]
fn metrics_by_hand() {
    // Four round trips of +50, −30, −20, +10 pips (1 lot EURUSD: $10 a pip), each held one hour.
    let closes = [1.1000, 1.1000, 1.1050, 1.1050, 1.1020, 1.1020, 1.1000, 1.1000, 1.1010, 1.1010];
    let bars: Vec<Bar> = closes.iter().enumerate().map(|(i, &c)| flat(i as i64, c)).collect();
    let long = enter(Side::Long, None, None);
    let mut s = Script::new([(0, long), (1, Action::Exit), (2, long), (3, Action::Exit)]);
    s.actions.extend([long, Action::Exit, long, Action::Exit]);
    let r = backtest(&mut s, &bars);
    let pips: Vec<_> = r.trades.iter().map(|t| t.pips.unwrap()).collect();
    assert_eq!(pips, vec![dec!(50), dec!(-30), dec!(-20), dec!(10)]);
    let m = &r.metrics;
    assert_eq!((m.trades, m.wins, m.losses, m.win_rate), (4, 2, 2, Some(0.5)));
    assert_eq!((m.gross_profit, m.gross_loss, m.profit_factor), (dec!(600), dec!(500), Some(1.2)));
    assert_eq!((m.net_pips, m.net_profit, m.final_balance), (Some(dec!(10)), dec!(100), dec!(10100)));
    // Equity 10000 → 10500 → 10200 → 10000 → 10100: the worst fall is 500 from the 10,500 peak.
    let curve: Vec<_> = r.equity.iter().map(|p| (p.time / HOUR, p.equity)).collect();
    assert_eq!(curve, vec![(0, dec!(10000)), (2, dec!(10500)), (4, dec!(10200)), (6, dec!(10000)), (8, dec!(10100))]);
    assert_eq!(m.max_drawdown, dec!(500));
    assert!((m.max_drawdown_pct - 500.0 / 10500.0 * 100.0).abs() < 1e-9);
    // Returns per trade on the initial balance, over a 9-hour span.
    let rs = [500.0 / 10000.0, -300.0 / 10000.0, -200.0 / 10000.0, 100.0 / 10000.0];
    let mean = rs.iter().sum::<f64>() / 4.0;
    let sd = (rs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let per_year: f64 = 4.0 / (9.0 * 3600.0 / (365.25 * 86400.0));
    let want = mean / sd * per_year.sqrt();
    assert!((m.sharpe.unwrap() - want).abs() < 1e-9 * want.abs(), "{:?} vs {want}", m.sharpe);
    assert_eq!((m.avg_holding_hours, m.avg_bars_held), (Some(1.0), Some(1.0)));
    assert_eq!((m.avg_r_multiple, m.avg_planned_rr), (None, None));
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let bars = [flat(0, 1.1), flat(1, 1.1)];
    let config = BacktestConfig::default();
    let err = run(&mut Script::default(), eurusd(), &bars, Some(&[0.0]), &config).unwrap_err();
    assert_eq!(err, BacktestError::SpreadCount { spreads: 1, bars: 2 });
    let err = run(&mut Script::default(), eurusd(), &bars, Some(&[0.0, -1.0]), &config).unwrap_err();
    assert!(matches!(err, BacktestError::BadSpread { bar: 1, .. }), "{err}");
    let nan = enter(Side::Long, Some(f64::NAN), None);
    let err = run(&mut Script::new([(0, nan)]), eurusd(), &bars, None, &config).unwrap_err();
    assert!(err.to_string().contains("stop loss"), "{err}");
    // No bars: an empty report, not a panic.
    let r = run(&mut Script::default(), eurusd(), &[], None, &config).unwrap();
    assert_eq!((r.metrics.bars, r.metrics.trades, r.equity.len()), (0, 0, 0));
}

#[test]
fn sma_cross_reverses_on_every_cross() {
    // Closes that swing up and down: SMA(1) against SMA(2) crosses at bars 3 (up) and 5 (down).
    let closes = [5.0, 4.0, 3.0, 4.0, 5.0, 4.0, 3.0];
    let bars: Vec<Bar> = closes.iter().enumerate().map(|(i, &c)| flat(i as i64, c)).collect();
    let r = run(&mut SmaCross::new(1, 2), instrument("AAPL"), &bars, None, &Default::default()).unwrap();
    let got: Vec<_> = r.trades.iter().map(|t| (t.side, t.entry_bar, t.exit_bar, t.reason)).collect();
    assert_eq!(got, vec![(Side::Long, 4, 6, ExitReason::Reverse), (Side::Short, 6, 6, ExitReason::EndOfData)]);
    assert_eq!(r.strategy, "sma-cross");
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    /// A random walk of EURUSD-like bars on the 5-decimal grid, and one action per bar.
    fn scenario() -> impl proptest::strategy::Strategy<Value = (Vec<Bar>, Vec<Action>, Vec<f64>)> {
        let step = (-30i64..30, -30i64..30, 0i64..40, 0i64..40, 0i64..4);
        let action = (0u8..6, any::<bool>(), 5i64..60, 5i64..60);
        proptest::collection::vec((step, action), 2..80).prop_map(|steps| {
            let mut price = 110_000i64;
            let (mut bars, mut actions, mut spreads) = (Vec::new(), Vec::new(), Vec::new());
            for (i, ((gap, body, up, down, spread), (kind, long, sl, tp))) in steps.into_iter().enumerate() {
                let open = price + gap;
                let close = open + body;
                let (high, low) = (open.max(close) + up, open.min(close) - down);
                price = close;
                let px = |x: i64| x as f64 / 100_000.0;
                bars.push(bar(i as i64, px(open), px(high), px(low), px(close)));
                spreads.push(spread as f64 / 100_000.0);
                let side = if long { Side::Long } else { Side::Short };
                let dir = if long { 1 } else { -1 };
                let levels = intent(side, Some(px(close - dir * sl)), Some(px(close + dir * tp)));
                actions.push(match kind {
                    0 => Action::Enter(levels),
                    1 => Action::Reverse(intent(side, None, None)),
                    2 => Action::Reverse(levels),
                    3 => Action::Exit,
                    _ => Action::Hold,
                });
            }
            (bars, actions, spreads)
        })
    }

    proptest! {
        /// No look-ahead: the trades a run over the first `m` bars closes before its last bar are exactly
        /// the full run's first trades, so nothing after a bar can change what happened at it.
        #[test]
        fn a_prefix_of_the_history_gives_a_prefix_of_the_trades((bars, actions, spreads) in scenario(), cut in 0.0f64..1.0) {
            let m = ((bars.len() as f64 * cut) as usize).max(1);
            let config = BacktestConfig::default();
            let full = run(&mut Script { actions: actions.clone(), seen: vec![] }, eurusd(), &bars, Some(&spreads), &config).unwrap();
            let part = run(&mut Script { actions, seen: vec![] }, eurusd(), &bars[..m], Some(&spreads[..m]), &config).unwrap();
            let settled: Vec<_> = part.trades.iter().filter(|t| t.reason != ExitReason::EndOfData).collect();
            prop_assert!(settled.len() <= full.trades.len());
            for (a, b) in settled.iter().zip(&full.trades) {
                prop_assert_eq!(*a, b);
            }
        }

        /// Every fill is a price the market offered: entries at a bar's open on the entry side, exits within
        /// the exit side's range of their bar, and every trade's figures add up to the metrics.
        #[test]
        fn fills_are_prices_the_market_offered((bars, actions, spreads) in scenario()) {
            let config = BacktestConfig::default();
            let r = run(&mut Script { actions, seen: vec![] }, eurusd(), &bars, Some(&spreads), &config).unwrap();
            let to_f = |p: Price| p.value().to_f64().unwrap();
            // Fills are rounded to the 5-decimal grid, so a half-spread of half a step moves them by up to it.
            let step = 0.5e-5 + 1e-12;
            for t in &r.trades {
                let (b, s) = (bars[t.entry_bar], spreads[t.entry_bar]);
                let want = match t.side { Side::Long => b.open + s / 2.0, Side::Short => b.open - s / 2.0 };
                prop_assert!((to_f(t.entry) - want).abs() <= step, "{t:?}");
                prop_assert!(t.entry_bar > 0, "nothing fills on the first bar: no decision precedes it");
                let (b, s) = (bars[t.exit_bar], spreads[t.exit_bar]);
                let shift = match t.side { Side::Long => -s / 2.0, Side::Short => s / 2.0 };
                let exit = to_f(t.exit);
                prop_assert!(exit >= b.low + shift - step && exit <= b.high + shift + step, "{t:?} {b:?}");
                prop_assert!(t.exit_bar >= t.entry_bar);
            }
            let net: Decimal = r.trades.iter().filter_map(|t| t.profit).sum();
            prop_assert_eq!(r.metrics.net_profit, net);
            prop_assert_eq!(r.equity.len(), r.trades.len() + 1);
            prop_assert!(r.metrics.closed_at_end <= 1);
        }
    }
}
