//! `/signals`: the signed-in user's notifications, newest first, with Discord's actions: Open Trade (a form
//! pre-filled like Discord's modal and checked field by field on the server), Ignore, and Details (the
//! signal's probabilities and model). Opening and ignoring go through [`store::actions`], the same code the
//! Discord buttons use. Details also shows what Discord's Details shows: the indicator state at the signal's
//! candle (computed by `engine::indicator_state`, formatted as the Discord embed formats it) and an SVG chart
//! of the recent candles with the entry, stop loss and take profit.

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::trades::{capitalise, refused};
use crate::views::{or_dash, when};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::{Candle, Entry, Instrument, InstrumentRegistry, Lots, NotificationId, Price, Side, Signal, TradeError};
use engine::IndicatorState;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use store::actions::{self, ActionError, TradeForm};
use store::{Notification, StoredSignal};

/// Notifications per inbox page.
pub const INBOX_PAGE: u32 = 20;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/signals", get(inbox))
        .route("/signals/{id}", get(details))
        .route("/signals/{id}/open", post(open))
        .route("/signals/{id}/ignore", post(ignore))
}

/// A notification with its signal, as the inbox and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    pub id: NotificationId,
    pub symbol: String,
    pub side: &'static str,
    pub timeframe: Option<&'static str>,
    pub entry: String,
    pub stop_loss: Option<String>,
    pub take_profits: Vec<String>,
    /// 0 to 1.
    pub confidence: Option<rust_decimal::Decimal>,
    pub stage1_prob: Option<f64>,
    pub stage2_prob: Option<f64>,
    pub model_version: Option<String>,
    pub source: String,
    pub status: &'static str,
    pub acknowledged: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub created: String,
}

fn entry_text(signal: &Signal) -> String {
    match signal.entry {
        Entry::Market => "market".into(),
        Entry::Price { price } => price.to_string(),
        Entry::Zone { low, high } => format!("{low} – {high}"),
    }
}

fn probability(p: Option<f64>) -> String {
    or_dash(p.map(|p| format!("{:.1}%", p * 100.0)))
}

impl InboxItem {
    pub fn of(notification: &Notification, stored: &StoredSignal) -> InboxItem {
        let s = &stored.signal;
        InboxItem {
            id: notification.id,
            symbol: s.symbol.as_str().to_string(),
            side: s.side.as_str(),
            timeframe: s.timeframe.map(|t| t.as_str()),
            entry: entry_text(s),
            stop_loss: s.stop_loss.map(|p| p.to_string()),
            take_profits: s.take_profits.iter().map(ToString::to_string).collect(),
            confidence: s.confidence,
            stage1_prob: s.stage1_prob,
            stage2_prob: s.stage2_prob,
            model_version: s.model_version.clone(),
            source: s.source.to_text(),
            status: notification.status.as_str(),
            acknowledged: notification.acknowledged,
            created_at: notification.created_at,
            created: when(notification.created_at),
        }
    }

    pub fn confidence_text(&self) -> String {
        or_dash(self.confidence.map(|c| format!("{}%", (c * rust_decimal::Decimal::ONE_HUNDRED).round_dp(1))))
    }

    pub fn stage1_text(&self) -> String {
        probability(self.stage1_prob)
    }

    pub fn stage2_text(&self) -> String {
        probability(self.stage2_prob)
    }
}

/// A page of the user's inbox, newest first, with whether another page follows.
pub async fn inbox_items(state: &WebState, user: &CurrentUser, page: u32) -> Result<(Vec<InboxItem>, bool), AppError> {
    let offset = page.saturating_sub(1).saturating_mul(INBOX_PAGE);
    let mut notifications = state.store.notifications_for_user(user.id(), INBOX_PAGE + 1, offset).await?;
    let more = notifications.len() > INBOX_PAGE as usize;
    notifications.truncate(INBOX_PAGE as usize);
    let mut items = Vec::with_capacity(notifications.len());
    for n in &notifications {
        match state.store.get_signal(n.signal_id).await? {
            Some(signal) => items.push(InboxItem::of(n, &signal)),
            None => tracing::warn!(notification = %n.id, "a notification's signal is missing; not listed"),
        }
    }
    Ok((items, more))
}

#[derive(Template)]
#[template(path = "signals.html")]
struct InboxPage {
    layout: Layout,
    items: Vec<InboxItem>,
    page: u32,
    more: bool,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    page: Option<u32>,
    ignored: Option<i64>,
}

async fn inbox(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<InboxQuery>,
) -> Result<Html<String>, AppError> {
    let page = query.page.unwrap_or(1).max(1);
    let (items, more) = inbox_items(&state, &user, page).await?;
    Ok(Html(
        InboxPage {
            layout: Layout::for_user(&user, "Signals", "/signals"),
            items,
            page,
            more,
            message: query.ignored.map(|id| format!("Signal #{id} ignored.")),
        }
        .render()?,
    ))
}

/// The Open Trade form's values as typed, and a message per field.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    pub entry: String,
    #[serde(default)]
    pub lots: String,
    #[serde(default)]
    pub stop_loss: String,
    #[serde(default)]
    pub take_profit: String,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Default)]
pub struct OpenErrors {
    pub entry: Option<String>,
    pub lots: Option<String>,
    pub stop_loss: Option<String>,
    pub take_profit: Option<String>,
    pub notes: Option<String>,
    /// A problem with the trade as a whole.
    pub form: Option<String>,
}

impl OpenErrors {
    fn any(&self) -> bool {
        self.entry.is_some()
            || self.lots.is_some()
            || self.stop_loss.is_some()
            || self.take_profit.is_some()
            || self.notes.is_some()
            || self.form.is_some()
    }
}

/// Checks each field on its own, so every bad one gets its own message.
pub fn check_fields(form: &OpenForm) -> OpenErrors {
    let mut errors = OpenErrors::default();
    if Price::parse(form.entry.trim()).is_err() {
        errors.entry = Some("Entry must be a price above zero, such as 1.0850.".into());
    }
    if Lots::parse(form.lots.trim()).is_err() {
        errors.lots = Some("Lots must be a size above zero, such as 0.10.".into());
    }
    for (value, slot, name) in [
        (&form.stop_loss, &mut errors.stop_loss, "Stop loss"),
        (&form.take_profit, &mut errors.take_profit, "Take profit"),
    ] {
        if !value.trim().is_empty() && Price::parse(value.trim()).is_err() {
            *slot = Some(format!("{name} must be a price above zero, or empty for none."));
        }
    }
    if form.notes.chars().count() > actions::MAX_NOTES_CHARS {
        errors.notes = Some(format!("Notes are at most {} characters.", actions::MAX_NOTES_CHARS));
    }
    errors
}

/// Puts a rule the trade as a whole broke beside the field it concerns.
fn place(error: TradeError, form: &OpenForm, errors: &mut OpenErrors) {
    let message = capitalise(&format!("{error}."));
    let is = |field: &str, price: Price| Price::parse(field.trim()).ok() == Some(price);
    match error {
        TradeError::StopLossWrongSide { .. } => errors.stop_loss = Some(message),
        TradeError::TakeProfitWrongSide { .. } => errors.take_profit = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.entry, price) => errors.entry = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.stop_loss, price) => errors.stop_loss = Some(message),
        TradeError::TooPrecise { price, .. } if is(&form.take_profit, price) => errors.take_profit = Some(message),
        _ => errors.form = Some(message),
    }
}

/// Candles drawn on the Details chart: as many as Discord's Details chart shows.
pub const CHART_CANDLES: usize = 60;
const CHART_WIDTH: u32 = 720;
const CHART_HEIGHT: u32 = 320;
/// Room at the chart's right edge for the level labels, in pixels.
const LABEL_ROOM: u32 = 150;

/// One indicator as Details shows it.
#[derive(Debug, Clone)]
struct Figure {
    label: &'static str,
    id: &'static str,
    value: String,
}

/// The market around the signal: its indicators and chart, or a note saying why there are none.
#[derive(Debug, Clone, Default)]
struct Market {
    figures: Vec<Figure>,
    chart_svg: Option<String>,
    /// Candles on the chart.
    candles_shown: usize,
    note: Option<String>,
}

/// The indicator state as Discord's Details embed formats it: RSI and ADX to one place, %B to two, the MACD
/// histogram one place finer than the instrument's prices, ATR in price and pips.
fn figures(state: &IndicatorState, instrument: Option<&Instrument>) -> Vec<Figure> {
    let number = |x: Option<f64>, places: usize| x.map_or("warming up".to_string(), |x| format!("{x:.places$}"));
    // An instrument the registry no longer knows still gets numbers, at a forex-like precision.
    let precision = instrument.map_or(5, |i| i.price_precision as usize);
    let atr = match (state.atr14, instrument.and_then(|i| i.pip_size).and_then(|p| p.to_f64())) {
        (Some(atr), Some(pip)) => format!("{atr:.precision$} ({:.1} pips)", atr / pip),
        (atr, _) => number(atr, precision),
    };
    vec![
        Figure { label: "RSI(14)", id: "indicator-rsi", value: number(state.rsi14, 1) },
        Figure {
            label: "MACD histogram (12, 26, 9)",
            id: "indicator-macd",
            value: number(state.macd_histogram, precision + 1),
        },
        Figure {
            label: "Bollinger %B (20, 2)",
            id: "indicator-bollinger",
            value: number(state.bollinger_percent_b, 2),
        },
        Figure { label: "ATR(14)", id: "indicator-atr", value: atr },
        Figure { label: "ADX(14)", id: "indicator-adx", value: number(state.adx14, 1) },
        Figure { label: "Indicators at", id: "indicator-at", value: when(state.at) },
    ]
}

/// A level drawn across the chart.
struct Level {
    name: &'static str,
    price: Price,
    /// The price at the instrument's precision, as the label shows it.
    text: String,
    colour: RGBColor,
}

/// The signal's entry (the zone's edge a fill would be worst at, as Discord's Details draws it), stop loss and
/// first take profit; a market entry has no line.
fn levels(signal: &Signal, instrument: Option<&Instrument>) -> Vec<Level> {
    let entry = match signal.entry {
        Entry::Price { price } => Some(price),
        Entry::Zone { low, high } => Some(if signal.side == Side::Long { high } else { low }),
        Entry::Market => None,
    };
    [
        (signal.stop_loss, "SL", RGBColor(0xE0, 0x70, 0x00)),
        (signal.take_profits.first().copied(), "TP", RGBColor(0x1E, 0x8E, 0x3E)),
        (entry, "Entry", RGBColor(0x2F, 0x5B, 0xD3)),
    ]
    .into_iter()
    .filter_map(|(price, name, colour)| {
        price.map(|price| {
            let text = match instrument {
                Some(i) => format!("{:.*}", i.price_precision as usize, price.value()),
                None => price.to_string(),
            };
            Level { name, price, text, colour }
        })
    })
    .collect()
}

fn price_f64(price: rust_decimal::Decimal) -> f64 {
    price.to_f64().unwrap_or_default()
}

/// The latest [`CHART_CANDLES`] candles as an inline SVG: candlesticks, and the levels as labelled horizontal
/// lines. plotters draws the shapes; the labels are plain SVG text added after it, because plotters' own text
/// needs system fonts a server may not have. `None` without candles.
fn chart_svg(candles: &[Candle], levels: &[Level], title: &str) -> Result<Option<String>, AppError> {
    let shown = &candles[candles.len().saturating_sub(CHART_CANDLES)..];
    if shown.is_empty() {
        return Ok(None);
    }
    let prices = shown.iter().flat_map(|c| [c.low, c.high]).chain(levels.iter().map(|l| l.price.value()));
    let (low, high) =
        prices.map(price_f64).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p), hi.max(p)));
    let span = if high > low { high - low } else { high.abs().max(1.0) * 0.001 };
    let (low, high) = (low - span * 0.06, high + span * 0.06);
    let mut svg = String::new();
    let mut labels = Vec::with_capacity(levels.len());
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| AppError::Internal(format!("could not draw the signal chart: {e}"));
        root.fill(&WHITE).map_err(draw)?;
        let (plot, _) = root.split_horizontally(CHART_WIDTH - LABEL_ROOM);
        let mut chart =
            ChartBuilder::on(&plot).margin(10).build_cartesian_2d(0.0..shown.len() as f64, low..high).map_err(draw)?;
        for i in 1..5 {
            let y = low + (high - low) * f64::from(i) / 5.0;
            chart
                .draw_series(LineSeries::new([(0.0, y), (shown.len() as f64, y)], RGBColor(230, 230, 230)))
                .map_err(draw)?;
        }
        for (i, candle) in shown.iter().enumerate() {
            let x = i as f64 + 0.5;
            let style =
                if candle.close >= candle.open { RGBColor(0x26, 0xA6, 0x9A) } else { RGBColor(0xEF, 0x53, 0x50) };
            let (open, close) = (price_f64(candle.open), price_f64(candle.close));
            chart
                .draw_series([PathElement::new(vec![(x, price_f64(candle.low)), (x, price_f64(candle.high))], style)])
                .map_err(draw)?;
            // A doji still gets a visible body.
            let body = if (open - close).abs() < span * 0.002 {
                (open - span * 0.001, open + span * 0.001)
            } else {
                (open, close)
            };
            chart
                .draw_series([Rectangle::new([(x - 0.35, body.0), (x + 0.35, body.1)], style.filled())])
                .map_err(draw)?;
        }
        for level in levels {
            let y = price_f64(level.price.value());
            chart
                .draw_series(LineSeries::new([(0.0, y), (shown.len() as f64, y)], level.colour.stroke_width(2)))
                .map_err(draw)?;
            let (_, row) = chart.backend_coord(&(shown.len() as f64, y));
            labels.push((row, level));
        }
        root.present().map_err(draw)?;
    }
    // Labels sit right of the plot; ones that would overlap are pushed apart, keeping their order.
    labels.sort_by_key(|(row, _)| *row);
    let mut text = String::new();
    let mut last = i32::MIN;
    for (row, level) in labels {
        let y = row.max(last.saturating_add(16)) + 5;
        last = y - 5;
        let RGBColor(r, g, b) = level.colour;
        text.push_str(&format!(
            "<text class=\"level level-{}\" x=\"{}\" y=\"{y}\" fill=\"rgb({r},{g},{b})\" \
             font-family=\"sans-serif\" font-size=\"13\">{} {}</text>",
            level.name.to_lowercase(),
            CHART_WIDTH - LABEL_ROOM + 6,
            level.name,
            level.text,
        ));
    }
    let title = title.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
    let Some(end) = svg.rfind("</svg>") else {
        return Err(AppError::Internal("plotters wrote no closing svg tag".into()));
    };
    svg.insert_str(end, &text);
    let svg = svg.replacen("<svg ", &format!("<svg id=\"signal-chart\" role=\"img\" aria-label=\"{title}\" "), 1);
    Ok(Some(svg))
}

/// Reads the candles up to the signal's candle (as Discord's Details does) and builds the indicator figures
/// and the chart. A failed read is a note on the page, not a failed page: the form below still works.
async fn market(state: &WebState, signal: &Signal) -> Result<Market, AppError> {
    let timeframe_text = signal.timeframe.map_or("(no timeframe)", |t| t.as_str());
    let candles = match signal.timeframe {
        Some(timeframe) => {
            // A signal is stamped with its candle's close; the candle itself opened one timeframe earlier.
            let until = signal.created_at - timeframe.duration();
            match state.store.recent_candles(&signal.symbol, timeframe, until, engine::snapshot::HISTORY_CANDLES).await
            {
                Ok(candles) => candles,
                Err(error) => {
                    tracing::error!(%error, "could not read candles for a signal's details");
                    let note = "The candle history could not be read just now.".to_string();
                    return Ok(Market { note: Some(note), ..Market::default() });
                }
            }
        }
        None => Vec::new(),
    };
    let Some(state) = engine::indicator_state(&candles) else {
        let note = format!(
            "No {} {timeframe_text} candles are stored up to this signal, so there is no chart and no indicator state.",
            signal.symbol
        );
        return Ok(Market { note: Some(note), ..Market::default() });
    };
    let instrument = InstrumentRegistry::global().get(signal.symbol.as_str()).ok();
    let title = format!("{} {timeframe_text} candles with the entry, stop loss and take profit", signal.symbol);
    Ok(Market {
        figures: figures(&state, instrument),
        chart_svg: chart_svg(&candles, &levels(signal, instrument), &title)?,
        candles_shown: candles.len().min(CHART_CANDLES),
        note: None,
    })
}

#[derive(Template)]
#[template(path = "signal.html")]
struct DetailsPage {
    layout: Layout,
    item: InboxItem,
    market: Market,
    values: OpenForm,
    errors: OpenErrors,
}

async fn details_page(
    state: &WebState,
    user: &CurrentUser,
    id: NotificationId,
    values: Option<OpenForm>,
    errors: OpenErrors,
) -> Result<DetailsPage, AppError> {
    let (notification, signal) =
        actions::own_notification(state.store.as_ref(), user.id(), id).await.map_err(refused)?;
    let values = match values {
        Some(values) => values,
        None => {
            let defaults = actions::trade_defaults(state.store.as_ref(), &user.user, &signal).await.map_err(refused)?;
            OpenForm {
                entry: defaults.entry.map(|p| p.to_string()).unwrap_or_default(),
                lots: defaults.lots.to_string(),
                stop_loss: defaults.stop_loss.map(|p| p.to_string()).unwrap_or_default(),
                take_profit: defaults.take_profit.map(|p| p.to_string()).unwrap_or_default(),
                notes: String::new(),
            }
        }
    };
    let market = market(state, &signal.signal).await?;
    Ok(DetailsPage {
        layout: Layout::for_user(user, "Signal", "/signals"),
        item: InboxItem::of(&notification, &signal),
        market,
        values,
        errors,
    })
}

async fn details(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, AppError> {
    let page = details_page(&state, &user, NotificationId(id), None, OpenErrors::default()).await?;
    Ok(Html(page.render()?))
}

/// `POST /signals/{id}/open`: opens the trade, or shows the form again with a message beside each bad field
/// and nothing stored.
async fn open(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<OpenForm>,
) -> Result<Response, AppError> {
    let id = NotificationId(id);
    let mut errors = check_fields(&form);
    if !errors.any() {
        let typed = TradeForm {
            entry: form.entry.trim(),
            lots: form.lots.trim(),
            stop_loss: form.stop_loss.trim(),
            take_profit: form.take_profit.trim(),
            notes: &form.notes,
        };
        match actions::open_from_notification(state.store.as_ref(), user.id(), id, &typed, state.clock.now()).await {
            Ok(opened) => {
                if opened.created {
                    state.announce(bus::Event::TradeOpened { trade: opened.trade.clone() }).await;
                }
                return Ok(Redirect::to(&format!("/trades?opened={}", opened.trade.id)).into_response());
            }
            Err(ActionError::Invalid(error)) => place(error, &form, &mut errors),
            Err(other) => return Err(refused(other)),
        }
    }
    let page = details_page(&state, &user, id, Some(form), errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

/// `POST /signals/{id}/ignore`: acknowledges the notification.
async fn ignore(State(state): State<WebState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, AppError> {
    actions::ignore_notification(state.store.as_ref(), user.id(), NotificationId(id)).await.map_err(refused)?;
    Ok(Redirect::to(&format!("/signals?ignored={id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let form = OpenForm {
            entry: "abc".into(),
            lots: "-1".into(),
            stop_loss: "x".into(),
            take_profit: "".into(),
            notes: "n".repeat(1001),
        };
        let errors = check_fields(&form);
        assert!(errors.entry.is_some() && errors.lots.is_some() && errors.stop_loss.is_some());
        assert!(errors.take_profit.is_none(), "an empty take profit means none");
        assert!(errors.notes.is_some());
    }
}
