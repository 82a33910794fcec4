//! `/stats`: the signed-in user's statistics over their closed trades (computed by `domain::stats`) and three
//! SVG charts drawn with plotters' SVG backend: the equity curve, the drawdown, and win rate by confidence
//! bucket against the confidence itself (calibration).
//!
//! The charts carry no text (plotters needs system fonts for text); the page prints the scales beside them.

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::views::{duration, money, or_dash, percent};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use domain::stats::{self, Bucket, Group, Point, Sample, Summary};
use domain::{SignalId, Timeframe, Trade, TradeStatus};
use futures::TryStreamExt as _;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::HashMap;
use store::TradeQuery;

pub fn routes() -> Router<WebState> {
    Router::new().route("/stats", get(page))
}

/// Everything `/stats` and `/api/stats` show.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub currency: String,
    pub summary: Summary,
    pub by_pair: Vec<Group>,
    pub by_timeframe: Vec<Group>,
    pub calibration: Vec<Bucket>,
    pub equity: Vec<Point>,
    pub drawdown: Vec<Point>,
}

/// Reads the user's closed trades and their signals' timeframe and confidence, and computes the report.
pub async fn report(state: &WebState, user: &CurrentUser) -> Result<StatsReport, AppError> {
    let query = TradeQuery { status: Some(TradeStatus::Closed), ..TradeQuery::of(user.id()) };
    let trades: Vec<Trade> = state.store.stream_trades(&query).try_collect().await?;
    let mut signals: HashMap<SignalId, (Option<Timeframe>, Option<Decimal>)> = HashMap::new();
    for id in trades.iter().filter_map(|t| t.signal_id) {
        if let std::collections::hash_map::Entry::Vacant(slot) = signals.entry(id) {
            let meta = state.store.get_signal(id).await?.map(|s| (s.signal.timeframe, s.signal.confidence));
            slot.insert(meta.unwrap_or((None, None)));
        }
    }
    let samples: Vec<Sample<'_>> = trades
        .iter()
        .map(|trade| {
            let (timeframe, confidence) =
                trade.signal_id.and_then(|id| signals.get(&id).copied()).unwrap_or((None, None));
            Sample { trade, timeframe, confidence }
        })
        .collect();
    let equity = stats::equity_curve(&trades);
    Ok(StatsReport {
        currency: user.user.account_currency.clone(),
        summary: stats::summary(&trades),
        by_pair: stats::by_pair(&samples),
        by_timeframe: stats::by_timeframe(&samples),
        calibration: stats::calibration(&samples),
        drawdown: stats::drawdown(&equity),
        equity,
    })
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 240;

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or_default()
}

/// A line over the points' values, x being the trade's position in close order. `None` when empty.
fn line_chart(points: &[Point], colour: RGBColor) -> Result<Option<String>, AppError> {
    if points.is_empty() {
        return Ok(None);
    }
    let values: Vec<f64> = std::iter::once(0.0).chain(points.iter().map(|p| to_f64(p.value))).collect();
    let (low, high) = values.iter().fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let pad = ((high - low) * 0.05).max(1e-9);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| AppError::Internal(format!("could not draw a chart: {e}"));
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .build_cartesian_2d(0.0..(values.len() - 1).max(1) as f64, (low - pad)..(high + pad))
            .map_err(draw)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), ((values.len() - 1).max(1) as f64, 0.0)],
                RGBColor(190, 190, 190),
            ))
            .map_err(draw)?;
        let series = values.iter().enumerate().map(|(i, v)| (i as f64, *v));
        chart.draw_series(LineSeries::new(series, colour.stroke_width(2))).map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(Some(svg))
}

/// Calibration: the diagonal (a perfectly calibrated model), and each bucket's (predicted, realised) point.
fn calibration_chart(buckets: &[Bucket]) -> Result<Option<String>, AppError> {
    if buckets.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (HEIGHT, HEIGHT)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| AppError::Internal(format!("could not draw a chart: {e}"));
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root).margin(8).build_cartesian_2d(0.0..100.0, 0.0..100.0).map_err(draw)?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (100.0, 100.0)], RGBColor(190, 190, 190))).map_err(draw)?;
        let points: Vec<(f64, f64)> = buckets.iter().map(|b| (to_f64(b.predicted), to_f64(b.realised))).collect();
        chart.draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2))).map_err(draw)?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, BLUE.filled()))).map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(Some(svg))
}

/// One figure on the page.
struct Figure {
    label: &'static str,
    id: &'static str,
    value: String,
}

struct GroupRow {
    key: String,
    closed: usize,
    win_rate: String,
    profit: String,
}

struct BucketRow {
    range: String,
    closed: usize,
    predicted: String,
    realised: String,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    layout: Layout,
    closed: usize,
    figures: Vec<Figure>,
    by_pair: Vec<GroupRow>,
    by_timeframe: Vec<GroupRow>,
    buckets: Vec<BucketRow>,
    equity_svg: Option<String>,
    equity_range: String,
    drawdown_svg: Option<String>,
    calibration_svg: Option<String>,
    unpriced: usize,
}

fn rows(groups: &[Group], currency: &str) -> Vec<GroupRow> {
    groups
        .iter()
        .map(|g| GroupRow {
            key: g.key.clone(),
            closed: g.closed,
            win_rate: percent(g.win_rate),
            profit: money(g.profit, currency),
        })
        .collect()
}

async fn page(State(state): State<WebState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let report = report(&state, &user).await?;
    let s = &report.summary;
    let c = report.currency.as_str();
    let figures = vec![
        Figure {
            label: "Closed trades",
            id: "stat-closed",
            value: format!("{} ({} W / {} L / {} BE)", s.closed, s.wins, s.losses, s.breakeven),
        },
        Figure { label: "Win rate", id: "stat-win-rate", value: or_dash(s.win_rate.map(percent)) },
        Figure { label: "Total P&L", id: "stat-total", value: money(s.total_profit, c) },
        Figure {
            label: "Profit factor",
            id: "stat-profit-factor",
            value: s.profit_factor.map_or_else(
                || if s.wins > 0 { "∞ (no losses)".into() } else { "—".into() },
                |p| p.round_dp(2).to_string(),
            ),
        },
        Figure { label: "Sharpe (per trade)", id: "stat-sharpe", value: or_dash(s.sharpe.map(|v| format!("{v:.2}"))) },
        Figure { label: "Max drawdown", id: "stat-drawdown", value: money(-s.max_drawdown, c) },
        Figure {
            label: "Average R:R (realised)",
            id: "stat-average-r",
            value: or_dash(s.average_r.map(|r| format!("{}R over {} trades", r.round_dp(2), s.r_trades))),
        },
        Figure {
            label: "Average holding time",
            id: "stat-holding",
            value: or_dash(s.average_holding_seconds.map(duration)),
        },
    ];
    let (low, high) =
        report.equity.iter().fold((Decimal::ZERO, Decimal::ZERO), |(lo, hi), p| (lo.min(p.value), hi.max(p.value)));
    let html = StatsPage {
        layout: Layout::for_user(&user, "Stats", "/stats"),
        closed: s.closed,
        figures,
        by_pair: rows(&report.by_pair, c),
        by_timeframe: rows(&report.by_timeframe, c),
        buckets: report
            .calibration
            .iter()
            .map(|b| BucketRow {
                range: format!("{}–{}%", b.from, b.from + 10),
                closed: b.closed,
                predicted: percent(b.predicted),
                realised: percent(b.realised),
            })
            .collect(),
        equity_svg: line_chart(&report.equity, RGBColor(47, 91, 211))?,
        equity_range: format!("from {} to {}", money(low, c), money(high, c)),
        drawdown_svg: line_chart(&report.drawdown, RGBColor(179, 38, 30))?,
        calibration_svg: calibration_chart(&report.calibration)?,
        unpriced: s.unpriced,
    }
    .render()?;
    Ok(Html(html))
}
