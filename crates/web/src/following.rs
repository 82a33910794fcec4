//! `/following`: the provider channels the signed-in user copies trades from, each with its broker, account
//! balance and risk settings, and the copied orders the copier placed or refused for them (with the gate and
//! its reason), so a follower can see why a signal was not copied.
//!
//! Broker keys are sealed with [`store::vault::KeyCipher`] (bound to the user) before they reach the store and
//! are never shown again: the form says "keys stored" and leaves its inputs empty, and an empty pair on
//! re-save keeps what is stored. Every field is checked here, with a message beside each wrong one, and
//! nothing is stored until all are right; the risk rules themselves are `risk::FollowerRiskSettings`'s.
//! `GET /api/following` and `GET /api/copy-orders` give the same data as JSON, without any credentials.

use crate::WebState;
use crate::error::{ApiError, AppError};
use crate::layout::Layout;
use crate::session::CurrentUser;
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use domain::{SignalId, TradeId};
use futures::{StreamExt, TryStreamExt};
use risk::{FollowerRiskSettings, HoursDraft, RiskSettingsDraft, RiskSettingsError, Sizing};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use store::vault::BrokerCredentials;
use store::{BrokerKind, CopyOrder, Follower, FollowerId, NewFollower, WEBHOOK_CHANNEL};

/// Copied orders the page and the API show by default.
const COPY_ORDERS_SHOWN: u32 = 100;
/// The most `/api/copy-orders?limit=` may ask for.
const MAX_COPY_ORDERS: u32 = 500;
/// The message a follow that needs keys gets when this server cannot encrypt them.
pub const NO_CIPHER: &str = "Broker keys cannot be stored: no secret key configured (SIGNALPOST_SECRET_KEY).";
/// Longer than any real broker key; refuses junk before it is encrypted.
const MAX_KEY_LENGTH: usize = 512;
const WEEKDAYS: [Weekday; 7] =
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/following", get(show).post(save))
        .route("/following/{id}/enabled", post(set_enabled))
        .route("/api/following", get(api_following))
        .route("/api/copy-orders", get(api_copy_orders))
}

/// What a person reads for a broker.
pub fn broker_label(broker: BrokerKind) -> &'static str {
    match broker {
        BrokerKind::Paper => "Paper (simulated, no keys)",
        BrokerKind::BinanceSpot => "Binance spot",
        BrokerKind::BinanceFutures => "Binance futures",
        BrokerKind::Alpaca => "Alpaca",
    }
}

/// An option of a select, radio group or checkbox group and whether it is chosen.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    checked: bool,
}

fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// The form's values as text, so a refused submission comes back exactly as typed. The keys are not here:
/// they are never written back into a page.
#[derive(Debug, Clone, Default)]
struct Values {
    provider_channel: String,
    broker: String,
    balance: String,
    currency: String,
    signals_per_day: String,
    daily_loss_percent: String,
    time_zone: String,
    hours_start: String,
    hours_end: String,
    weekdays: Vec<String>,
    max_open_positions: String,
    /// `fixed`, `risk_percent` or `kelly`.
    sizing: String,
    fixed_lots: String,
    risk_percent: String,
    kelly_fraction: String,
    kelly_max_risk_percent: String,
    kelly_min_trades: String,
    min_lots: String,
    max_lots: String,
    lot_step: String,
}

impl Values {
    fn of_draft(
        draft: RiskSettingsDraft,
        provider_channel: &str,
        broker: BrokerKind,
        balance: &str,
        currency: &str,
    ) -> Values {
        let (hours_start, hours_end, weekdays) = match &draft.hours {
            Some(h) => (
                h.start.format("%H:%M").to_string(),
                h.end.format("%H:%M").to_string(),
                h.weekdays.iter().map(|d| short_day(*d).to_string()).collect(),
            ),
            None => (String::new(), String::new(), Vec::new()),
        };
        // The modes not chosen show their defaults, so switching mode starts from something sensible.
        let mut values = Values {
            provider_channel: provider_channel.to_string(),
            broker: broker.as_str().to_string(),
            balance: balance.to_string(),
            currency: currency.to_string(),
            signals_per_day: draft.signals_per_day.map(|n| n.to_string()).unwrap_or_default(),
            daily_loss_percent: decimal_text(draft.daily_loss_percent),
            time_zone: draft.time_zone.clone(),
            hours_start,
            hours_end,
            weekdays,
            max_open_positions: draft.max_open_positions.to_string(),
            sizing: String::new(),
            fixed_lots: decimal_text(draft.min_lots),
            risk_percent: decimal_text(Sizing::DEFAULT_RISK_PERCENT),
            kelly_fraction: decimal_text(Sizing::DEFAULT_KELLY_FRACTION),
            kelly_max_risk_percent: decimal_text(Sizing::DEFAULT_RISK_PERCENT),
            kelly_min_trades: Sizing::DEFAULT_KELLY_MIN_TRADES.to_string(),
            min_lots: decimal_text(draft.min_lots),
            max_lots: decimal_text(draft.max_lots),
            lot_step: decimal_text(draft.lot_step),
        };
        match draft.sizing {
            Sizing::FixedLots { lots } => {
                values.sizing = "fixed".into();
                values.fixed_lots = decimal_text(lots);
            }
            Sizing::RiskPercent { percent } => {
                values.sizing = "risk_percent".into();
                values.risk_percent = decimal_text(percent);
            }
            Sizing::Kelly { fraction, max_risk_percent, min_trades } => {
                values.sizing = "kelly".into();
                values.kelly_fraction = decimal_text(fraction);
                values.kelly_max_risk_percent = decimal_text(max_risk_percent);
                values.kelly_min_trades = min_trades.to_string();
            }
        }
        values
    }

    /// A new follow: the defaults (5% daily loss, 3 open positions, 2% risk per trade).
    fn defaults(provider_channel: &str) -> Values {
        Values::of_draft(RiskSettingsDraft::default(), provider_channel, BrokerKind::Paper, "", "USD")
    }

    fn of(follower: &Follower) -> Values {
        let draft = RiskSettingsDraft::from(follower.risk_settings.clone());
        Values::of_draft(
            draft,
            &follower.provider_channel,
            follower.broker,
            &decimal_text(follower.balance),
            &follower.currency,
        )
    }
}

/// The keys as typed; `Debug` never shows them.
#[derive(Clone, Default)]
struct TypedKeys {
    api_key: String,
    api_secret: String,
}

impl std::fmt::Debug for TypedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypedKeys([redacted])")
    }
}

/// One submission of the follow form.
#[derive(Debug, Default)]
struct Submitted {
    /// Which form on the page it came from: `new`, or the id of the follow it edits.
    form: String,
    values: Values,
    keys: TypedKeys,
}

impl Submitted {
    fn from_form(pairs: Vec<(String, String)>) -> Submitted {
        let mut s = Submitted::default();
        let v = &mut s.values;
        for (name, value) in pairs {
            let text = value.trim().to_string();
            match name.as_str() {
                "form" => s.form = text,
                "api_key" => s.keys.api_key = text,
                "api_secret" => s.keys.api_secret = text,
                "provider_channel" => v.provider_channel = text,
                "broker" => v.broker = text,
                "balance" => v.balance = text,
                "currency" => v.currency = text,
                "signals_per_day" => v.signals_per_day = text,
                "daily_loss_percent" => v.daily_loss_percent = text,
                "time_zone" => v.time_zone = text,
                "hours_start" => v.hours_start = text,
                "hours_end" => v.hours_end = text,
                "weekdays" => v.weekdays.push(text),
                "max_open_positions" => v.max_open_positions = text,
                "sizing" => v.sizing = text,
                "fixed_lots" => v.fixed_lots = text,
                "risk_percent" => v.risk_percent = text,
                "kelly_fraction" => v.kelly_fraction = text,
                "kelly_max_risk_percent" => v.kelly_max_risk_percent = text,
                "kelly_min_trades" => v.kelly_min_trades = text,
                "min_lots" => v.min_lots = text,
                "max_lots" => v.max_lots = text,
                "lot_step" => v.lot_step = text,
                _ => {}
            }
        }
        s
    }
}

/// A message beside each wrong field, by the field's form name; `form` is for what belongs to no one field.
#[derive(Debug, Clone, Default)]
struct Errors(BTreeMap<&'static str, String>);

impl Errors {
    fn set(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let capital: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    if capital.ends_with('.') { capital } else { format!("{capital}.") }
}

fn decimal(text: &str, what: &str) -> Result<Decimal, String> {
    if text.is_empty() {
        return Err(format!("Give {what}."));
    }
    text.parse::<Decimal>().map_err(|_| format!("{} must be a number; {text:?} is not.", sentence_start(what)))
}

fn whole(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("Give {what}."));
    }
    text.parse::<u32>().map_err(|_| format!("{} must be a whole number; {text:?} is not.", sentence_start(what)))
}

fn sentence_start(what: &str) -> String {
    let mut chars = what.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn time_of_day(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S")).ok()
}

fn short_day(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

/// The form field a risk rule's refusal belongs beside.
fn field_of(error: &RiskSettingsError, draft: &RiskSettingsDraft) -> &'static str {
    match error {
        RiskSettingsError::DailyLossPercent(_) => "daily_loss_percent",
        RiskSettingsError::TimeZone(_) => "time_zone",
        RiskSettingsError::EmptyWindow(_) | RiskSettingsError::WindowSeconds(_) => "hours",
        RiskSettingsError::MaxOpenPositions => "max_open_positions",
        RiskSettingsError::RiskPercent(_) => match draft.sizing {
            Sizing::Kelly { .. } => "kelly_max_risk_percent",
            _ => "risk_percent",
        },
        RiskSettingsError::KellyFraction(_) => "kelly_fraction",
        RiskSettingsError::KellyMinTrades => "kelly_min_trades",
        RiskSettingsError::LotStep(_) => "lot_step",
        RiskSettingsError::LotsRange(value) if *value == draft.min_lots => "min_lots",
        RiskSettingsError::LotsRange(_) => "max_lots",
        RiskSettingsError::OffStep { what, .. } if what.contains("minimum") => "min_lots",
        RiskSettingsError::OffStep { what, .. } if what.contains("maximum") => "max_lots",
        RiskSettingsError::OffStep { .. } | RiskSettingsError::FixedOutsideRange { .. } => "fixed_lots",
        RiskSettingsError::MinAboveMax { .. } => "min_lots",
    }
}

/// Reads the risk fields into a draft (a field that does not parse gets its message and the default, so the
/// other fields are still checked).
fn risk_draft(v: &Values, errors: &mut Errors) -> RiskSettingsDraft {
    let mut draft = RiskSettingsDraft::default();
    if !v.signals_per_day.is_empty() {
        match whole(&v.signals_per_day, "the signals a day") {
            Ok(n) => draft.signals_per_day = Some(n),
            Err(e) => errors.set("signals_per_day", e),
        }
    }
    match decimal(&v.daily_loss_percent, "the daily loss limit") {
        Ok(p) => draft.daily_loss_percent = p,
        Err(e) => errors.set("daily_loss_percent", e),
    }
    if v.time_zone.is_empty() {
        errors.set("time_zone", "Give a time zone, such as UTC or Europe/London.");
    } else {
        draft.time_zone = v.time_zone.clone();
    }
    let mut weekdays = Vec::new();
    for text in &v.weekdays {
        match text.parse::<Weekday>() {
            Ok(day) => weekdays.push(day),
            Err(_) => errors.set("hours", format!("{text:?} is not a day of the week.")),
        }
    }
    match (v.hours_start.as_str(), v.hours_end.as_str()) {
        ("", "") if weekdays.is_empty() => {}
        ("", "") => errors.set("hours", "Give the hours to trade on those days, or untick every day."),
        (start, end) => match (time_of_day(start), time_of_day(end)) {
            (Some(start), Some(end)) => draft.hours = Some(HoursDraft { start, end, weekdays }),
            _ => errors.set("hours", "Give both a start and an end time (HH:MM), or neither to trade all day."),
        },
    }
    match whole(&v.max_open_positions, "the maximum open positions") {
        Ok(n) => draft.max_open_positions = n,
        Err(e) => errors.set("max_open_positions", e),
    }
    for (field, text, what, slot) in [
        ("min_lots", &v.min_lots, "the minimum lots", &mut draft.min_lots),
        ("max_lots", &v.max_lots, "the maximum lots", &mut draft.max_lots),
        ("lot_step", &v.lot_step, "the lot step", &mut draft.lot_step),
    ] {
        match decimal(text, what) {
            Ok(d) => *slot = d,
            Err(e) => errors.set(field, e),
        }
    }
    let sizing = match v.sizing.as_str() {
        "fixed" => decimal(&v.fixed_lots, "the fixed size in lots")
            .map(|lots| Sizing::FixedLots { lots })
            .map_err(|e| errors.set("fixed_lots", e))
            .ok(),
        "risk_percent" => decimal(&v.risk_percent, "the risk per trade")
            .map(|percent| Sizing::RiskPercent { percent })
            .map_err(|e| errors.set("risk_percent", e))
            .ok(),
        "kelly" => {
            let fraction =
                decimal(&v.kelly_fraction, "the Kelly fraction").map_err(|e| errors.set("kelly_fraction", e));
            let max = decimal(&v.kelly_max_risk_percent, "the largest risk per trade")
                .map_err(|e| errors.set("kelly_max_risk_percent", e));
            let min_trades =
                whole(&v.kelly_min_trades, "the closed trades needed").map_err(|e| errors.set("kelly_min_trades", e));
            match (fraction, max, min_trades) {
                (Ok(fraction), Ok(max_risk_percent), Ok(min_trades)) => {
                    Some(Sizing::Kelly { fraction, max_risk_percent, min_trades })
                }
                _ => None,
            }
        }
        _ => {
            errors.set("sizing", "Choose how orders are sized: a fixed size, a risk percentage or Kelly.");
            None
        }
    };
    if let Some(sizing) = sizing {
        draft.sizing = sizing;
    }
    draft
}

/// Checks the risk settings with `risk`'s own rules. Each group of fields is checked on its own against the
/// defaults first, so one answer names every wrong field rather than only the first the rules meet.
fn check_risk(v: &Values, errors: &mut Errors) -> Option<FollowerRiskSettings> {
    let draft = risk_draft(v, errors);
    type Apply = fn(&mut RiskSettingsDraft, &RiskSettingsDraft);
    let groups: [Apply; 5] = [
        |d, s| d.daily_loss_percent = s.daily_loss_percent,
        |d, s| d.time_zone = s.time_zone.clone(),
        |d, s| d.hours = s.hours.clone(),
        |d, s| d.max_open_positions = s.max_open_positions,
        // Sizing and lots depend on each other (a fixed size must sit between the minimum and maximum).
        |d, s| {
            d.sizing = s.sizing;
            d.min_lots = s.min_lots;
            d.max_lots = s.max_lots;
            d.lot_step = s.lot_step;
        },
    ];
    for apply in groups {
        let mut partial = RiskSettingsDraft::default();
        apply(&mut partial, &draft);
        if let Err(error) = FollowerRiskSettings::new_checked(partial) {
            errors.set(field_of(&error, &draft), sentence(&error.to_string()));
        }
    }
    match FollowerRiskSettings::new_checked(draft.clone()) {
        Ok(settings) if errors.is_empty() => Some(settings),
        Ok(_) => None,
        Err(error) => {
            errors.set(field_of(&error, &draft), sentence(&error.to_string()));
            None
        }
    }
}

/// Everything but the keys, checked: the settings to store, or `None` with `errors` filled in.
struct Checked {
    broker: BrokerKind,
    balance: Decimal,
    currency: String,
    risk: FollowerRiskSettings,
}

fn check(v: &Values, errors: &mut Errors) -> Option<Checked> {
    let broker = BrokerKind::parse(&v.broker);
    if broker.is_none() {
        errors.set("broker", "Choose a broker.");
    }
    let balance = match decimal(&v.balance, "the account balance") {
        Ok(b) if b > Decimal::ZERO && b.scale() <= 8 => Some(b.normalize()),
        Ok(_) => {
            errors.set("balance", "The account balance is an amount above 0 (at most 8 decimals).");
            None
        }
        Err(e) => {
            errors.set("balance", e);
            None
        }
    };
    let currency = v.currency.to_ascii_uppercase();
    let currency_ok = (3..=5).contains(&currency.len()) && currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency_ok {
        errors.set("currency", "The currency is a code of 3 to 5 letters, such as USD, EUR or USDT.");
    }
    let risk = check_risk(v, errors);
    match (broker, balance, risk) {
        (Some(broker), Some(balance), Some(risk)) if currency_ok && errors.is_empty() => {
            Some(Checked { broker, balance, currency, risk })
        }
        _ => None,
    }
}

/// One follow's form on the page.
#[derive(Debug, Clone)]
struct FollowForm {
    /// `new`, or the follow's id: prefixes the ids of its inputs and messages.
    key: String,
    id: Option<i64>,
    channel_name: String,
    /// Only the new form lets the channel be chosen; a follow keeps its channel.
    channels: Vec<Choice>,
    brokers: Vec<Choice>,
    sizings: Vec<Choice>,
    weekdays: Vec<Choice>,
    values: Values,
    errors: Errors,
    keys_stored: bool,
    enabled: bool,
    saved: bool,
}

impl FollowForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.0.get(field).map(String::as_str)
    }

    fn invalid(&self, field: &str) -> bool {
        self.errors.has(field)
    }
}

/// A copied order as the page shows it.
#[derive(Debug, Clone)]
struct CopyRow {
    id: i64,
    time: String,
    provider: String,
    signal: String,
    status: &'static str,
    gate: String,
    reason: String,
    trade: Option<(i64, String)>,
}

#[derive(Template)]
#[template(path = "following.html")]
struct FollowingPage {
    layout: Layout,
    follows: Vec<FollowForm>,
    new_form: FollowForm,
    copies: Vec<CopyRow>,
    has_cipher: bool,
    no_cipher_message: &'static str,
    no_channels: bool,
}

/// Registered channels by id, with their display names and whether they are enabled; the TradingView
/// webhook is always there.
async fn channel_names(state: &WebState) -> Result<Vec<(String, String, bool)>, AppError> {
    let mut channels: Vec<(String, String, bool)> =
        state.store.provider_channels().await?.into_iter().map(|c| (c.channel_id, c.name, c.enabled)).collect();
    channels.push((WEBHOOK_CHANNEL.into(), "TradingView webhook".into(), true));
    Ok(channels)
}

fn name_of(channels: &[(String, String, bool)], id: &str) -> String {
    channels
        .iter()
        .find(|(c, _, _)| c == id)
        .map(|(_, name, _)| name.clone())
        .unwrap_or_else(|| format!("channel {id}"))
}

fn form_for(
    key: String,
    follower: Option<&Follower>,
    values: Values,
    errors: Errors,
    channels: &[(String, String, bool)],
) -> FollowForm {
    let channel_choices = if follower.is_none() {
        channels
            .iter()
            .filter(|(_, _, enabled)| *enabled)
            .map(|(id, name, _)| Choice {
                value: id.clone(),
                label: if id == WEBHOOK_CHANNEL { name.clone() } else { format!("{name} ({id})") },
                checked: *id == values.provider_channel,
            })
            .collect()
    } else {
        Vec::new()
    };
    let brokers = BrokerKind::ALL
        .iter()
        .map(|b| Choice {
            value: b.as_str().into(),
            label: broker_label(*b).into(),
            checked: b.as_str() == values.broker,
        })
        .collect();
    let sizings = [("fixed", "Fixed lots"), ("risk_percent", "Risk % of the balance"), ("kelly", "Kelly (fraction)")]
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).into(),
            label: (*label).into(),
            checked: values.sizing == *value,
        })
        .collect();
    let weekdays = WEEKDAYS
        .iter()
        .map(|d| {
            let value = short_day(*d);
            let checked = values.weekdays.iter().any(|w| w.parse::<Weekday>().ok() == Some(*d));
            Choice { value: value.into(), label: value.into(), checked }
        })
        .collect();
    FollowForm {
        key,
        id: follower.map(|f| f.id.0),
        channel_name: name_of(channels, &values.provider_channel),
        channels: channel_choices,
        brokers,
        sizings,
        weekdays,
        keys_stored: follower.is_some_and(|f| f.sealed_credentials.is_some()),
        enabled: follower.is_some_and(|f| f.enabled),
        saved: false,
        values,
        errors,
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The user's newest copied orders with their provider, signal and trade.
async fn copy_rows(
    state: &WebState,
    orders: Vec<CopyOrder>,
    followers: &[Follower],
    channels: &[(String, String, bool)],
) -> Result<Vec<CopyRow>, AppError> {
    let mut signal_ids: Vec<SignalId> = orders.iter().map(|o| o.signal_id).collect();
    signal_ids.sort_by_key(|s| s.0);
    signal_ids.dedup();
    // A few at a time: at most 100 small lookups, without holding many pool connections.
    let signals: HashMap<SignalId, String> = futures::stream::iter(signal_ids)
        .map(|id| async move {
            let text = state
                .store
                .get_signal(id)
                .await?
                .map(|s| format!("#{} {} {}", id.0, s.signal.symbol.as_str(), s.signal.side.as_str()));
            Ok::<_, store::StoreError>((id, text.unwrap_or_else(|| format!("#{}", id.0))))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let trade_ids: Vec<TradeId> = orders.iter().filter_map(|o| o.trade_id).collect();
    let trades: HashMap<TradeId, String> = futures::stream::iter(trade_ids)
        .map(|id| async move {
            let link = state.store.get_trade(id).await?.map(|t| {
                let day = t.opened_at.format("%Y-%m-%d");
                format!("/trades?pair={}&from={day}&to={day}#trade-{}", t.symbol.as_str(), t.id)
            });
            Ok::<_, store::StoreError>((id, link.unwrap_or_else(|| "/trades".into())))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let provider_of: HashMap<FollowerId, &str> =
        followers.iter().map(|f| (f.id, f.provider_channel.as_str())).collect();
    Ok(orders
        .into_iter()
        .map(|o| CopyRow {
            id: o.id.0,
            time: time(o.created_at),
            provider: provider_of.get(&o.follower_id).map(|c| name_of(channels, c)).unwrap_or_else(|| "—".into()),
            signal: signals.get(&o.signal_id).cloned().unwrap_or_default(),
            status: o.status.as_str(),
            gate: o.gate.unwrap_or_default(),
            reason: o.reason.unwrap_or_default(),
            trade: o.trade_id.map(|t| (t.0, trades.get(&t).cloned().unwrap_or_else(|| "/trades".into()))),
        })
        .collect())
}

/// The whole page; `replace` puts a refused submission (its values and messages) in place of its form.
async fn render(
    state: &WebState,
    user: &CurrentUser,
    preselect: Option<&str>,
    saved: Option<i64>,
    replace: Option<(String, Values, Errors)>,
) -> Result<String, AppError> {
    let channels = channel_names(state).await?;
    let followers = state.store.followers_for_user(user.id()).await?;
    let mut follows = Vec::new();
    for f in &followers {
        let key = f.id.0.to_string();
        let (values, errors) = match &replace {
            Some((k, values, errors)) if *k == key => (values.clone(), errors.clone()),
            _ => (Values::of(f), Errors::default()),
        };
        let mut form = form_for(key, Some(f), values, errors, &channels);
        form.saved = saved == Some(f.id.0);
        follows.push(form);
    }
    let new_form = match replace {
        Some((k, values, errors)) if k == "new" => form_for(k, None, values, errors, &channels),
        _ => {
            let first = channels.iter().find(|(_, _, enabled)| *enabled).map(|(id, _, _)| id.as_str());
            let channel = preselect.or(first).unwrap_or(WEBHOOK_CHANNEL);
            form_for("new".into(), None, Values::defaults(channel), Errors::default(), &channels)
        }
    };
    let orders = state.store.copy_orders_for_user(user.id(), COPY_ORDERS_SHOWN).await?;
    let copies = copy_rows(state, orders, &followers, &channels).await?;
    let page = FollowingPage {
        layout: Layout::for_user(user, "Following", "/following"),
        no_channels: !channels.iter().any(|(id, _, enabled)| *enabled && id != WEBHOOK_CHANNEL),
        follows,
        new_form,
        copies,
        has_cipher: state.cipher.is_some(),
        no_cipher_message: NO_CIPHER,
    };
    Ok(page.render()?)
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    /// From a provider's "Follow" link: the channel the new form starts on.
    channel: Option<String>,
    /// The follow just saved.
    saved: Option<i64>,
}

async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<ShowQuery>,
) -> Result<Html<String>, AppError> {
    Ok(Html(render(&state, &user, query.channel.as_deref(), query.saved, None).await?))
}

/// `POST /following`: saves a follow (a new one, or the one the form edits), or shows the form again with a
/// message beside every wrong field and nothing stored.
async fn save(
    State(state): State<WebState>,
    user: CurrentUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let mut submitted = Submitted::from_form(form);
    let mut errors = Errors::default();
    let followers = state.store.followers_for_user(user.id()).await?;
    // An existing follow keeps its channel whatever the request says; a new one must name a channel that can
    // be followed. Following a channel already followed edits that follow (one per channel).
    let existing = if submitted.form == "new" || submitted.form.is_empty() {
        submitted.form = "new".into();
        let channel = submitted.values.provider_channel.clone();
        let known = channel_names(&state).await?;
        let followable = known.iter().any(|(id, _, enabled)| *enabled && *id == channel);
        if !followable {
            errors.set("provider_channel", "Choose a provider channel that is registered and enabled.");
        }
        followers.iter().find(|f| f.provider_channel == channel)
    } else {
        let id: i64 = submitted.form.parse().map_err(|_| AppError::NotFound)?;
        let follower = followers.iter().find(|f| f.id.0 == id).ok_or(AppError::NotFound)?;
        submitted.values.provider_channel = follower.provider_channel.clone();
        Some(follower)
    };
    let checked = check(&submitted.values, &mut errors);
    let sealed = match (&checked, BrokerKind::parse(&submitted.values.broker)) {
        (_, Some(broker)) if broker.needs_credentials() => {
            let keys = &submitted.keys;
            let kept = existing.is_some_and(|f| f.broker == broker && f.sealed_credentials.is_some());
            match (keys.api_key.is_empty(), keys.api_secret.is_empty()) {
                (true, true) if kept => None,
                (true, true) => {
                    errors.set(
                        "api_key",
                        format!("{} needs an API key and secret the first time.", broker_label(broker)),
                    );
                    None
                }
                (true, false) => {
                    errors.set("api_key", "Give the API key with its secret.");
                    None
                }
                (false, true) => {
                    errors.set("api_secret", "Give the API secret with its key.");
                    None
                }
                (false, false) if keys.api_key.len() > MAX_KEY_LENGTH || keys.api_secret.len() > MAX_KEY_LENGTH => {
                    errors.set("api_key", "That is longer than any broker key; paste the key and secret again.");
                    None
                }
                (false, false) => match &state.cipher {
                    Some(cipher) => Some(cipher.seal(
                        &BrokerCredentials { api_key: keys.api_key.clone(), api_secret: keys.api_secret.clone() },
                        user.id(),
                    )),
                    None => {
                        errors.set("api_key", NO_CIPHER);
                        None
                    }
                },
            }
        }
        // Paper trading needs no keys; any typed are dropped, never stored.
        _ => None,
    };
    if let (Some(checked), true) = (&checked, errors.is_empty()) {
        let new = NewFollower {
            user_id: user.id(),
            provider_channel: &submitted.values.provider_channel,
            broker: checked.broker,
            sealed_credentials: sealed,
            risk_settings: &checked.risk,
            balance: checked.balance,
            currency: &checked.currency,
            at: state.clock.now(),
        };
        match state.store.save_follower(&new).await {
            Ok(saved) => {
                tracing::info!(user = %user.id(), follower = saved.id.0, broker = saved.broker.as_str(), "follow saved");
                let to = format!("/following?saved={}#follow-{}", saved.id.0, saved.id.0);
                return Ok(Redirect::to(&to).into_response());
            }
            // The store's own refusal (keys a moment ago removed, a broker change racing this one).
            Err(store::StoreError::Invalid(error)) => errors.set("form", sentence(&error.to_string())),
            Err(error) => return Err(error.into()),
        }
    }
    let html = render(&state, &user, None, None, Some((submitted.form, submitted.values, errors))).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response())
}

#[derive(Debug, Deserialize)]
struct EnabledForm {
    enabled: String,
}

/// `POST /following/{id}/enabled`: pauses or resumes one of the user's own follows; anyone else's is 404,
/// exactly like one that does not exist.
async fn set_enabled(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<EnabledForm>,
) -> Result<Redirect, AppError> {
    let enabled = match form.enabled.as_str() {
        "true" | "on" | "1" => true,
        "false" | "off" | "0" => false,
        _ => return Err(AppError::BadRequest("enabled is true or false.".into())),
    };
    if !state.store.set_follower_enabled(user.id(), FollowerId(id), enabled).await? {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to(&format!("/following#follow-{id}")))
}

/// A follow as the API gives it: everything but the credentials, of which only their presence is said.
#[derive(Debug, Serialize)]
pub struct FollowView {
    pub id: FollowerId,
    pub provider_channel: String,
    pub provider_name: String,
    pub broker: BrokerKind,
    pub keys_stored: bool,
    pub enabled: bool,
    pub balance: Decimal,
    pub currency: String,
    pub risk_settings: FollowerRiskSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct FollowsAnswer {
    follows: Vec<FollowView>,
}

/// `GET /api/following`: the caller's follows.
async fn api_following(State(state): State<WebState>, user: CurrentUser) -> Result<Json<FollowsAnswer>, ApiError> {
    let channels = channel_names(&state).await?;
    let follows = state
        .store
        .followers_for_user(user.id())
        .await?
        .into_iter()
        .map(|f| FollowView {
            id: f.id,
            provider_name: name_of(&channels, &f.provider_channel),
            provider_channel: f.provider_channel,
            broker: f.broker,
            keys_stored: f.sealed_credentials.is_some(),
            enabled: f.enabled,
            balance: f.balance,
            currency: f.currency,
            risk_settings: f.risk_settings,
            created_at: f.created_at,
            updated_at: f.updated_at,
        })
        .collect();
    Ok(Json(FollowsAnswer { follows }))
}

#[derive(Debug, Deserialize)]
struct CopyQuery {
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct CopiesAnswer {
    copy_orders: Vec<CopyOrder>,
}

/// `GET /api/copy-orders?limit=N`: the caller's copied orders, newest first.
async fn api_copy_orders(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<CopyQuery>,
) -> Result<Json<CopiesAnswer>, ApiError> {
    let limit = query.limit.unwrap_or(COPY_ORDERS_SHOWN).clamp(1, MAX_COPY_ORDERS);
    Ok(Json(CopiesAnswer { copy_orders: state.store.copy_orders_for_user(user.id(), limit).await? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(overrides: &[(&str, &str)]) -> Submitted {
        let mut form: Vec<(String, String)> = [
            ("form", "new"),
            ("provider_channel", "123"),
            ("broker", "alpaca"),
            ("balance", "10000"),
            ("currency", "usd"),
            ("signals_per_day", ""),
            ("daily_loss_percent", "5"),
            ("time_zone", "Europe/London"),
            ("hours_start", ""),
            ("hours_end", ""),
            ("max_open_positions", "3"),
            ("sizing", "risk_percent"),
            ("fixed_lots", "0.1"),
            ("risk_percent", "2"),
            ("kelly_fraction", "0.25"),
            ("kelly_max_risk_percent", "2"),
            ("kelly_min_trades", "20"),
            ("min_lots", "0.01"),
            ("max_lots", "10"),
            ("lot_step", "0.01"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        for (name, value) in overrides {
            // Repeated fields (the weekdays) add up, like a browser's checkboxes.
            if *name != "weekdays" {
                form.retain(|(n, _)| n != name);
            }
            form.push((name.to_string(), value.to_string()));
        }
        Submitted::from_form(form)
    }

    #[test]
    fn a_valid_form_becomes_settings() {
        let s =
            submitted(&[("hours_start", "08:00"), ("hours_end", "17:30"), ("weekdays", "Mon"), ("weekdays", "Fri")]);
        let mut errors = Errors::default();
        let checked = check(&s.values, &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(checked.broker, BrokerKind::Alpaca);
        assert_eq!(checked.currency, "USD");
        let hours = checked.risk.hours().unwrap();
        assert_eq!(hours.weekdays(), &[Weekday::Mon, Weekday::Fri]);
        assert_eq!(checked.risk.time_zone().name(), "Europe/London");
    }

    #[test]
    fn every_wrong_field_gets_its_own_message_at_once() {
        let s = submitted(&[
            ("daily_loss_percent", "0"),
            ("time_zone", "Mars/Olympus"),
            ("min_lots", "5"),
            ("max_lots", "1"),
            ("max_open_positions", "0"),
            ("balance", "-3"),
            ("currency", "dollars!"),
            ("hours_start", "09:00"),
        ]);
        let mut errors = Errors::default();
        assert!(check(&s.values, &mut errors).is_none());
        for field in
            ["daily_loss_percent", "time_zone", "min_lots", "max_open_positions", "balance", "currency", "hours"]
        {
            assert!(errors.has(field), "{field} has no message: {errors:?}");
        }
    }

    #[test]
    fn the_sizing_modes_map_their_errors_to_their_own_fields() {
        for (overrides, field) in [
            (vec![("sizing", "fixed"), ("fixed_lots", "20")], "fixed_lots"),
            (vec![("sizing", "risk_percent"), ("risk_percent", "0")], "risk_percent"),
            (vec![("sizing", "kelly"), ("kelly_fraction", "2")], "kelly_fraction"),
            (vec![("sizing", "kelly"), ("kelly_max_risk_percent", "101")], "kelly_max_risk_percent"),
            (vec![("sizing", "kelly"), ("kelly_min_trades", "0")], "kelly_min_trades"),
            (vec![("lot_step", "0.005")], "lot_step"),
            (vec![("max_lots", "1.005")], "max_lots"),
            (vec![("sizing", "martingale")], "sizing"),
        ] {
            let s = submitted(&overrides);
            let mut errors = Errors::default();
            assert!(check(&s.values, &mut errors).is_none(), "{overrides:?}");
            assert!(errors.has(field), "{overrides:?}: {errors:?}");
        }
    }

    #[test]
    fn typed_keys_never_show_in_debug() {
        let s = submitted(&[("api_key", "AKIA-visible"), ("api_secret", "very-secret-value")]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("AKIA-visible") && !shown.contains("very-secret-value"), "{shown}");
        assert_eq!(s.keys.api_secret, "very-secret-value");
    }

    #[test]
    fn a_stored_follow_comes_back_as_the_values_it_was_saved_from() {
        let s = submitted(&[("sizing", "kelly"), ("kelly_fraction", "0.5"), ("signals_per_day", "4")]);
        let mut errors = Errors::default();
        let checked = check(&s.values, &mut errors).unwrap();
        let back = Values::of_draft(RiskSettingsDraft::from(checked.risk), "123", checked.broker, "10000", "USD");
        assert_eq!(back.sizing, "kelly");
        assert_eq!(back.kelly_fraction, "0.5");
        assert_eq!(back.signals_per_day, "4");
        assert_eq!(back.daily_loss_percent, "5");
        assert_eq!(back.time_zone, "Europe/London");
    }
}
