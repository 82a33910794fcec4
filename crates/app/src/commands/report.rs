//! How a backtest is shown: one JSON object, a readable report, the equity curve as CSV and as an SVG chart.
//!
//! Money is `Decimal` in the engine; here it becomes a JSON number, because that is what scripts comparing
//! runs want, and the cents survive the trip through `f64`. Figures that do not exist (a profit factor
//! without losses, pips on a stock) are `null`, never 0.
//!
//! The JSON's figures are the engine's `Metrics` (defined in `engine::backtest::metrics`) under the same
//! names, except `avg_rr`, which is `avg_r_multiple`: the mean realised R multiple of the trades with a stop
//! loss. `win_rate` is a fraction (0.5, not 50), `max_drawdown_pct` a percentage, and `seconds` the wall
//! time of the engine's run alone (not loading the file or printing).

use super::backtest::Outcome;
use chrono::{DateTime, SecondsFormat, Utc};
use engine::backtest::{BacktestTrade, EquityPoint};
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// How `sharpe` is computed, carried in the JSON so a number is never read without its definition.
pub const SHARPE_DEFINITION: &str =
    "per-trade returns on the initial balance (fixed lots), mean / sample sd x sqrt(trades per year), risk-free 0";

fn num(d: Decimal) -> Value {
    d.to_f64().map_or(Value::Null, Value::from)
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::from)
}

fn time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The JSON object `--json` prints.
pub fn json(o: &Outcome) -> Value {
    let m = &o.result.metrics;
    json!({
        "strategy": o.result.strategy,
        "symbol": o.series.instrument.symbol.as_str(),
        "timeframe": o.series.timeframe.as_str(),
        "price": o.price.as_str(),
        "spreads": o.series.file.spreads.is_some(),
        "lots": num(o.lots.value()),
        "account_currency": o.account_currency,
        "bars": m.bars,
        "trades": m.trades,
        "wins": m.wins,
        "losses": m.losses,
        "win_rate": opt(m.win_rate),
        "gross_profit": num(m.gross_profit),
        "gross_loss": num(m.gross_loss),
        "profit_factor": opt(m.profit_factor),
        "net_pips": m.net_pips.map_or(Value::Null, num),
        "net_profit": num(m.net_profit),
        "trades_without_rate": m.trades_without_rate,
        "initial_balance": num(m.initial_balance),
        "final_balance": num(m.final_balance),
        "max_drawdown": num(m.max_drawdown),
        "max_drawdown_pct": m.max_drawdown_pct,
        "sharpe": opt(m.sharpe),
        "sharpe_definition": SHARPE_DEFINITION,
        "avg_rr": opt(m.avg_r_multiple),
        "avg_planned_rr": opt(m.avg_planned_rr),
        "avg_holding_hours": opt(m.avg_holding_hours),
        "avg_bars_held": opt(m.avg_bars_held),
        "skipped_entries": m.skipped_entries,
        "closed_at_end": m.closed_at_end,
        "first_bar": o.series.bars.first().map(|b| time(b.time)),
        "last_bar": o.series.bars.last().map(|b| time(b.time)),
        "seconds": o.seconds,
        "candles_per_second": if o.seconds > 0.0 { Value::from(m.bars as f64 / o.seconds) } else { Value::Null },
    })
}

/// The readable report.
pub fn text(o: &Outcome) -> String {
    let m = &o.result.metrics;
    let ccy = &o.account_currency;
    let or_dash = |x: Option<String>| x.unwrap_or_else(|| "-".to_string());
    let mut s = String::new();
    let span = match (o.series.bars.first(), o.series.bars.last()) {
        (Some(a), Some(b)) => format!("{} to {}", time(a.time), time(b.time)),
        _ => "no bars".to_string(),
    };
    let _ = writeln!(
        s,
        "{} on {} {} ({} bars, {span}), lots {}, {}",
        o.result.strategy,
        o.series.instrument.symbol,
        o.series.timeframe,
        m.bars,
        o.lots,
        if o.series.file.spreads.is_some() {
            format!("{} candles, filled at the bid and ask", o.price)
        } else {
            "filled at the file's prices (no spreads)".to_string()
        }
    );
    let _ = writeln!(
        s,
        "trades          {} ({} won, {} lost){}",
        m.trades,
        m.wins,
        m.losses,
        match (m.skipped_entries, m.closed_at_end) {
            (0, 0) => String::new(),
            (k, e) => format!("; {k} entries skipped (already past a level at the open), {e} closed at end of data"),
        }
    );
    let _ = writeln!(s, "win rate        {}", or_dash(m.win_rate.map(|w| format!("{:.1}%", w * 100.0))));
    let _ = writeln!(s, "profit factor   {}", or_dash(m.profit_factor.map(|p| format!("{p:.2}"))));
    let _ = writeln!(s, "net pips        {}", or_dash(m.net_pips.map(|p| p.to_string())));
    let _ = writeln!(
        s,
        "net profit      {} {ccy} ({} -> {})",
        m.net_profit.round_dp(2),
        m.initial_balance,
        m.final_balance.round_dp(2)
    );
    if m.trades_without_rate > 0 {
        let _ = writeln!(
            s,
            "                {} trades had no rate to convert their profit into {ccy} and are not in it",
            m.trades_without_rate
        );
    }
    let _ =
        writeln!(s, "max drawdown    {} {ccy} ({:.2}% of the peak)", m.max_drawdown.round_dp(2), m.max_drawdown_pct);
    let _ = writeln!(s, "sharpe          {} ({SHARPE_DEFINITION})", or_dash(m.sharpe.map(|x| format!("{x:.2}"))));
    let _ = writeln!(
        s,
        "avg R           {} realised, {} planned",
        or_dash(m.avg_r_multiple.map(|x| format!("{x:.2}"))),
        or_dash(m.avg_planned_rr.map(|x| format!("{x:.2}")))
    );
    let _ = writeln!(
        s,
        "avg holding     {} hours ({} bars)",
        or_dash(m.avg_holding_hours.map(|x| format!("{x:.1}"))),
        or_dash(m.avg_bars_held.map(|x| format!("{x:.1}")))
    );
    let _ = writeln!(s, "backtest time   {:.3} s", o.seconds);
    s
}

/// `time,equity`, one row per point, times in RFC 3339 and equity to the cent.
pub fn equity_csv(equity: &[EquityPoint]) -> String {
    let mut s = String::with_capacity(32 * (equity.len() + 1));
    s.push_str("time,equity\n");
    for p in equity {
        let _ = writeln!(s, "{},{:.2}", time(p.time), p.equity);
    }
    s
}

/// Every trade, one row each, times in RFC 3339; empty fields where a figure does not exist.
pub fn trades_csv(trades: &[BacktestTrade]) -> String {
    let mut s = String::with_capacity(128 * (trades.len() + 1));
    s.push_str(
        "side,entry_time,exit_time,entry,exit,stop_loss,take_profit,reason,pips,profit,result,r_multiple,bars_held\n",
    );
    let show = |x: Option<String>| x.unwrap_or_default();
    for t in trades {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            t.side,
            time(t.entry_time),
            time(t.exit_time),
            t.entry,
            t.exit,
            show(t.stop_loss.map(|p| p.to_string())),
            show(t.take_profit.map(|p| p.to_string())),
            t.reason,
            show(t.pips.map(|p| p.to_string())),
            show(t.profit.map(|p| p.to_string())),
            t.result,
            show(t.r_multiple.map(|r| format!("{r:.4}"))),
            t.bars_held
        );
    }
    s
}

/// The equity curve as an SVG line chart, balance against date.
pub fn equity_svg(o: &Outcome) -> anyhow::Result<String> {
    let mut points: Vec<(i64, f64)> =
        o.result.equity.iter().map(|p| (p.time, p.equity.to_f64().unwrap_or(f64::NAN))).collect();
    // The closed-trade curve ends at the last exit; carry it to the last bar so the chart spans the history.
    if let (Some(&(t, e)), Some(last)) = (points.last(), o.series.bars.last())
        && last.time > t
    {
        points.push((last.time, e));
    }
    let (x0, x1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
        (Some(a), _) => (a.0, a.0 + 1),
        _ => (0, 1),
    };
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (y0, y1) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    let span_days = (x1 - x0) / 86_400;
    let date_format = if span_days > 3 { "%Y-%m-%d" } else { "%Y-%m-%d %H:%M" };
    let caption = format!(
        "{} {} {}: closed-trade equity ({})",
        o.result.strategy, o.series.instrument.symbol, o.series.timeframe, o.account_currency
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let x_label =
            |t: &i64| DateTime::<Utc>::from_timestamp(*t, 0).unwrap_or_default().format(date_format).to_string();
        let y_label = |y: &f64| format!("{y:.0}");
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .y_desc(format!("equity ({})", o.account_currency))
            .draw()?;
        chart.draw_series(LineSeries::new(points, &BLUE))?;
        root.present()?;
    }
    Ok(svg)
}
