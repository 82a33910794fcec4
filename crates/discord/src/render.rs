//! What Signalpost looks like in Discord: the signal embed with its Open Trade / Ignore / Details buttons,
//! the trade modal, the message edited in place once a signal was acted on, and the report of a closed
//! trade. Also the custom ids the buttons and the modal carry, and their parser.
//!
//! Everything here is pure: it builds twilight-model values that serialize to the JSON bodies Discord
//! documents, and never talks to the network.

use domain::{
    CloseReason, Instrument, InstrumentRegistry, Lots, Price, Side, Timeframe, Trade, TradeResult, TradeStatus,
};
use rust_decimal::{Decimal, RoundingStrategy};
use twilight_model::channel::message::Component;
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, TextInput, TextInputStyle};
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};
use twilight_util::builder::message::{ActionRowBuilder, ButtonBuilder, LabelBuilder};

use crate::OutgoingMessage;

/// The title of a signal the engine made; provider signals carry the provider's name instead.
pub const ENGINE_TITLE: &str = "REVERSAL SIGNAL DETECTED";

/// Embed colours.
pub const GREEN: u32 = 0x2E_CC_71;
pub const RED: u32 = 0xE7_4C_3C;
pub const GREY: u32 = 0x95_A5_A6;

/// Shown where a value is unknown; Discord refuses empty field values.
const NONE: &str = "—";

/// Discord's limits that our own text could exceed.
const EMBED_TITLE_MAX: usize = 256;
const MODAL_TITLE_MAX: usize = 45;
const CUSTOM_ID_MAX: usize = 100;

/// Everything the signal embed shows for one notification.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalView {
    pub notification_id: i64,
    /// [`ENGINE_TITLE`] for engine signals, the provider's name for provider signals.
    pub title: String,
    /// Gives the symbol, the price precision and the pip size the distances are shown in.
    pub instrument: Instrument,
    pub timeframe: Option<Timeframe>,
    pub side: Side,
    pub entry: Price,
    pub stop_loss: Price,
    pub take_profit: Price,
    /// 0..=1, shown as a percentage.
    pub confidence: Option<Decimal>,
    pub model_version: Option<String>,
}

/// What a button or a modal carries back to us: which action, on which notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomId {
    /// The Open Trade button: answer with [`trade_modal`].
    Open(i64),
    Ignore(i64),
    Details(i64),
    /// The submitted trade modal.
    TradeModal(i64),
}

impl CustomId {
    pub fn notification_id(self) -> i64 {
        match self {
            CustomId::Open(id) | CustomId::Ignore(id) | CustomId::Details(id) | CustomId::TradeModal(id) => id,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            CustomId::Open(_) => "open",
            CustomId::Ignore(_) => "ignore",
            CustomId::Details(_) => "details",
            CustomId::TradeModal(_) => "trade",
        }
    }
}

impl std::fmt::Display for CustomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.prefix(), self.notification_id())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomIdError {
    #[error("the custom id is empty; expected open:<id>, ignore:<id>, details:<id> or trade:<id>")]
    Empty,
    #[error("custom id {0:?} has no ':'; expected open:<id>, ignore:<id>, details:<id> or trade:<id>")]
    NoSeparator(String),
    #[error("custom id {custom_id:?} is not one of ours; expected open:<id>, ignore:<id>, details:<id> or trade:<id>")]
    UnknownKind { custom_id: String },
    #[error("custom id {custom_id:?} does not end in a notification id (a positive whole number)")]
    BadNotificationId { custom_id: String },
}

/// Parses the custom id of one of our buttons or of the trade modal. Anything else is refused, because a
/// custom id comes from the outside and decides what we do.
pub fn parse_custom_id(custom_id: &str) -> Result<CustomId, CustomIdError> {
    if custom_id.is_empty() {
        return Err(CustomIdError::Empty);
    }
    let shown = || truncate(custom_id, CUSTOM_ID_MAX);
    let Some((kind, id)) = custom_id.split_once(':') else {
        return Err(CustomIdError::NoSeparator(shown()));
    };
    let make: fn(i64) -> CustomId = match kind {
        "open" => CustomId::Open,
        "ignore" => CustomId::Ignore,
        "details" => CustomId::Details,
        "trade" => CustomId::TradeModal,
        _ => return Err(CustomIdError::UnknownKind { custom_id: shown() }),
    };
    // `i64::from_str` would also take "+5" and "-5"; only the digits we wrote are ours.
    let digits_only = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    match id.parse::<i64>() {
        Ok(n) if digits_only && n > 0 => Ok(make(n)),
        _ => Err(CustomIdError::BadNotificationId { custom_id: shown() }),
    }
}

/// The signal as it is first sent: the embed and its three buttons.
pub fn signal_message(view: &SignalView) -> OutgoingMessage {
    OutgoingMessage { embeds: vec![signal_embed(view).build()], components: vec![signal_buttons(view, false)] }
}

/// The signal once it was ignored: the same embed, greyed, with the buttons disabled so it cannot be
/// acted on twice.
pub fn ignored_message(view: &SignalView) -> OutgoingMessage {
    settled_message(view, "Ignored")
}

/// The signal once something was done with it (`note` says what, e.g. "Trade #12 opened"): the same embed,
/// greyed, with `note` in the footer and the buttons disabled.
pub fn settled_message(view: &SignalView, note: &str) -> OutgoingMessage {
    let embed = signal_embed(view).color(GREY).footer(EmbedFooterBuilder::new(truncate(note, 2048))).build();
    OutgoingMessage { embeds: vec![embed], components: vec![signal_buttons(view, true)] }
}

/// The given components with every button disabled, for editing a message when only its components are at
/// hand (an interaction carries the message it was clicked on).
pub fn disable_buttons(components: &[Component]) -> Vec<Component> {
    components
        .iter()
        .map(|component| match component {
            Component::Button(button) => Component::Button(Button { disabled: true, ..button.clone() }),
            Component::ActionRow(row) => {
                Component::ActionRow(ActionRow { components: disable_buttons(&row.components), id: row.id })
            }
            other => other.clone(),
        })
        .collect()
}

fn signal_embed(view: &SignalView) -> EmbedBuilder {
    let instrument = &view.instrument;
    let confidence = view.confidence.map_or_else(|| NONE.to_string(), |c| format!("{}%", percent_1dp(c)));
    EmbedBuilder::new()
        .title(truncate(&view.title, EMBED_TITLE_MAX))
        .color(side_colour(view.side))
        .field(EmbedFieldBuilder::new("Pair", instrument.symbol.as_str()).inline())
        .field(EmbedFieldBuilder::new("Timeframe", view.timeframe.map_or(NONE, Timeframe::as_str)).inline())
        .field(EmbedFieldBuilder::new("Signal", side_word(view.side)).inline())
        .field(EmbedFieldBuilder::new("Confidence", confidence).inline())
        .field(EmbedFieldBuilder::new("Entry", format_price(instrument, view.entry)).inline())
        .field(EmbedFieldBuilder::new("Stop Loss", level(instrument, view.entry, view.stop_loss)).inline())
        .field(EmbedFieldBuilder::new("Take Profit", level(instrument, view.entry, view.take_profit)).inline())
        .field(EmbedFieldBuilder::new("R:R", risk_reward(view.entry, view.stop_loss, view.take_profit)).inline())
        .field(EmbedFieldBuilder::new("Model", view.model_version.as_deref().unwrap_or(NONE)).inline())
}

fn signal_buttons(view: &SignalView, disabled: bool) -> Component {
    let id = view.notification_id;
    let button = |style, custom_id: CustomId, label: &str| {
        ButtonBuilder::new(style).custom_id(custom_id.to_string()).label(label).disabled(disabled).build()
    };
    ActionRowBuilder::new()
        .component(button(ButtonStyle::Success, CustomId::Open(id), "Open Trade"))
        .component(button(ButtonStyle::Secondary, CustomId::Ignore(id), "Ignore"))
        .component(button(ButtonStyle::Primary, CustomId::Details(id), "Details"))
        .build()
        .into()
}

/// The values the trade modal opens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeModalDefaults {
    pub entry: Price,
    pub lots: Lots,
    /// Left empty when the signal has none; the input is still required, so the user fills it in.
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
}

/// The custom ids of the modal's inputs, in order.
pub const MODAL_INPUTS: [&str; 5] = ["entry", "lots", "stop_loss", "take_profit", "notes"];

/// The Open Trade modal (response type 9): custom id `trade:<notification_id>`, inputs `entry`, `lots`,
/// `stop_loss`, `take_profit` (short, required, pre-filled) and `notes` (paragraph, optional, empty).
pub fn trade_modal(
    notification_id: i64,
    symbol: &str,
    side: Side,
    defaults: &TradeModalDefaults,
) -> InteractionResponse {
    let short = |custom_id: &str, value: Option<String>| text_input(custom_id, TextInputStyle::Short, true, 32, value);
    let inputs = [
        ("Entry price", short("entry", Some(defaults.entry.to_string()))),
        ("Lots", short("lots", Some(defaults.lots.to_string()))),
        ("Stop loss", short("stop_loss", defaults.stop_loss.map(|p| p.to_string()))),
        ("Take profit", short("take_profit", defaults.take_profit.map(|p| p.to_string()))),
        ("Notes (optional)", text_input("notes", TextInputStyle::Paragraph, false, 1000, None)),
    ];
    let components = inputs
        .into_iter()
        .map(|(label, input)| LabelBuilder::new(label, Component::TextInput(input)).build().into())
        .collect();
    let title = format!("Open {} {}", domain::Symbol::normalize(symbol), side_word(side));
    InteractionResponse {
        kind: InteractionResponseType::Modal,
        data: Some(InteractionResponseData {
            custom_id: Some(CustomId::TradeModal(notification_id).to_string()),
            title: Some(truncate(&title, MODAL_TITLE_MAX)),
            components: Some(components),
            ..InteractionResponseData::default()
        }),
    }
}

// Discord moved a text input's label onto the Label component that wraps it; twilight deprecates the old
// field, but a struct literal still has to name it.
#[allow(deprecated)]
fn text_input(
    custom_id: &str,
    style: TextInputStyle,
    required: bool,
    max_length: u16,
    value: Option<String>,
) -> TextInput {
    TextInput {
        custom_id: custom_id.to_string(),
        id: None,
        label: None,
        max_length: Some(max_length),
        min_length: None,
        placeholder: None,
        required: Some(required),
        style,
        value,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosedTradeError {
    #[error("trade {0} is not closed, so there is no result to report")]
    NotClosed(domain::TradeId),
}

/// Reports a closed trade: take profit hit, stop loss hit, closed by hand or timed out, with pips (price
/// change and percent where the instrument has no pips), money in `currency`, and how long it was open.
pub fn trade_closed_message(trade: &Trade, currency: &str) -> Result<OutgoingMessage, ClosedTradeError> {
    let (Some(exit), Some(reason), Some(closed_at), TradeStatus::Closed) =
        (trade.exit_price, trade.close_reason, trade.closed_at, trade.status)
    else {
        return Err(ClosedTradeError::NotClosed(trade.id));
    };
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok();
    let show = |p: Price| instrument.map_or_else(|| p.to_string(), |i| format_price(i, p));
    let change = (exit.value() - trade.entry.value()) * trade.side.direction();
    let (movement_name, movement) = match trade.pips.or_else(|| instrument.and_then(|i| i.to_pips(change))) {
        Some(pips) => ("Pips", format!("{} pips", signed(round_half_away(pips, 1)))),
        None => {
            let percent = round_half_away(change / trade.entry.value() * Decimal::ONE_HUNDRED, 2);
            ("Change", format!("{} ({}%)", signed(change.normalize()), signed(percent)))
        }
    };
    let profit = trade.profit.map_or_else(|| NONE.to_string(), |p| money(p, currency));
    let (headline, result) = (close_headline(reason), trade.result.map_or(NONE, result_word));
    let colour = match trade.result {
        Some(TradeResult::Win) => GREEN,
        Some(TradeResult::Loss) => RED,
        _ => GREY,
    };
    let embed = EmbedBuilder::new()
        .title(format!("{headline} · {} {}", trade.symbol, side_word(trade.side)))
        .description(format!("Trade #{} closed at {}.", trade.id, show(exit)))
        .color(colour)
        .field(EmbedFieldBuilder::new("Pair", trade.symbol.as_str()).inline())
        .field(EmbedFieldBuilder::new("Side", side_word(trade.side)).inline())
        .field(EmbedFieldBuilder::new("Lots", trade.lots.to_string()).inline())
        .field(EmbedFieldBuilder::new("Entry", show(trade.entry)).inline())
        .field(EmbedFieldBuilder::new("Exit", show(exit)).inline())
        .field(EmbedFieldBuilder::new(movement_name, movement).inline())
        .field(EmbedFieldBuilder::new("Profit", profit).inline())
        .field(EmbedFieldBuilder::new("Duration", duration((closed_at - trade.opened_at).num_seconds())).inline())
        .field(EmbedFieldBuilder::new("Result", result).inline())
        .build();
    Ok(OutgoingMessage { embeds: vec![embed], components: Vec::new() })
}

/// What a "still running" update shows: the live price the P&L was taken at and that P&L.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningView {
    pub price: Price,
    /// None for instruments without pips: the change is shown in price units and percent.
    pub pips: Option<Decimal>,
    /// In `currency`; None when no rate links the quote currency to it yet.
    pub profit: Option<Decimal>,
    pub currency: String,
    /// When the P&L was taken, for how long the trade had been open.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A "still running" update of an open trade: the live price, pips (or price change and percent), the
/// money it stands at, and how long it has been open, with its stop loss and take profit.
pub fn trade_running_message(trade: &Trade, view: &RunningView) -> OutgoingMessage {
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok();
    let show = |p: Price| instrument.map_or_else(|| p.to_string(), |i| format_price(i, p));
    let change = (view.price.value() - trade.entry.value()) * trade.side.direction();
    let (movement_name, movement) = match view.pips.or_else(|| instrument.and_then(|i| i.to_pips(change))) {
        Some(pips) => ("Pips", format!("{} pips", signed(round_half_away(pips, 1)))),
        None => {
            let percent = round_half_away(change / trade.entry.value() * Decimal::ONE_HUNDRED, 2);
            ("Change", format!("{} ({}%)", signed(change.normalize()), signed(percent)))
        }
    };
    let profit = view.profit.map_or_else(|| format!("no {} rate yet", view.currency), |p| money(p, &view.currency));
    let colour = match change.cmp(&Decimal::ZERO) {
        std::cmp::Ordering::Greater => GREEN,
        std::cmp::Ordering::Less => RED,
        std::cmp::Ordering::Equal => GREY,
    };
    let embed = EmbedBuilder::new()
        .title(format!("STILL RUNNING · {} {}", trade.symbol, side_word(trade.side)))
        .description(format!("Trade #{} is open; {} at {}.", trade.id, trade.symbol, show(view.price)))
        .color(colour)
        .field(EmbedFieldBuilder::new("Pair", trade.symbol.as_str()).inline())
        .field(EmbedFieldBuilder::new("Side", side_word(trade.side)).inline())
        .field(EmbedFieldBuilder::new("Lots", trade.lots.to_string()).inline())
        .field(EmbedFieldBuilder::new("Entry", show(trade.entry)).inline())
        .field(EmbedFieldBuilder::new("Now", show(view.price)).inline())
        .field(EmbedFieldBuilder::new(movement_name, movement).inline())
        .field(EmbedFieldBuilder::new("Profit", profit).inline())
        .field(EmbedFieldBuilder::new("Open for", duration((view.at - trade.opened_at).num_seconds())).inline())
        .field(EmbedFieldBuilder::new("Stop Loss", trade.stop_loss.map_or_else(|| NONE.to_string(), show)).inline())
        .field(EmbedFieldBuilder::new("Take Profit", trade.take_profit.map_or_else(|| NONE.to_string(), show)).inline())
        .build();
    OutgoingMessage { embeds: vec![embed], components: Vec::new() }
}

/// Reports a cancelled trade: it was withdrawn without a result, so it shows no P&L.
pub fn trade_cancelled_message(trade: &Trade) -> OutgoingMessage {
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok();
    let show = |p: Price| instrument.map_or_else(|| p.to_string(), |i| format_price(i, p));
    let embed = EmbedBuilder::new()
        .title(format!("TRADE CANCELLED · {} {}", trade.symbol, side_word(trade.side)))
        .description(format!("Trade #{} was cancelled; it has no result and counts in no statistics.", trade.id))
        .color(GREY)
        .field(EmbedFieldBuilder::new("Pair", trade.symbol.as_str()).inline())
        .field(EmbedFieldBuilder::new("Side", side_word(trade.side)).inline())
        .field(EmbedFieldBuilder::new("Lots", trade.lots.to_string()).inline())
        .field(EmbedFieldBuilder::new("Entry", show(trade.entry)).inline())
        .build();
    OutgoingMessage { embeds: vec![embed], components: Vec::new() }
}

fn close_headline(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::TpHit => "TAKE PROFIT HIT",
        CloseReason::SlHit => "STOP LOSS HIT",
        CloseReason::ManualClose => "TRADE CLOSED",
        CloseReason::Timeout => "TRADE TIMED OUT",
    }
}

fn result_word(result: TradeResult) -> &'static str {
    match result {
        TradeResult::Win => "WIN",
        TradeResult::Loss => "LOSS",
        TradeResult::Breakeven => "BREAKEVEN",
    }
}

pub(crate) fn side_word(side: Side) -> &'static str {
    match side {
        Side::Long => "LONG",
        Side::Short => "SHORT",
    }
}

fn side_colour(side: Side) -> u32 {
    match side {
        Side::Long => GREEN,
        Side::Short => RED,
    }
}

/// A price to the decimals its market quotes in (1.0854 on EURUSD is "1.08540"), never hiding digits it has.
fn format_price(instrument: &Instrument, price: Price) -> String {
    let places = instrument.price_precision.max(price.value().scale()) as usize;
    format!("{:.places$}", price.value())
}

/// A stop loss or take profit with its distance from the entry: pips where the instrument has them, price
/// units and percent where it does not.
fn level(instrument: &Instrument, entry: Price, level: Price) -> String {
    let distance = (level.value() - entry.value()).abs();
    match instrument.to_pips(distance) {
        Some(pips) => {
            let pips = round_half_away(pips, 1);
            format!(
                "{} ({} {})",
                format_price(instrument, level),
                pips,
                if pips == Decimal::ONE { "pip" } else { "pips" }
            )
        }
        None => {
            let percent = round_half_away(distance / entry.value() * Decimal::ONE_HUNDRED, 2);
            let places = instrument.price_precision.max(distance.scale()) as usize;
            format!("{} ({:.places$}, {percent}%)", format_price(instrument, level), distance)
        }
    }
}

/// Reward per unit of risk, as traders write it: "1:2.00".
fn risk_reward(entry: Price, stop_loss: Price, take_profit: Price) -> String {
    let risk = (entry.value() - stop_loss.value()).abs();
    let reward = (take_profit.value() - entry.value()).abs();
    if risk.is_zero() {
        return NONE.to_string();
    }
    format!("1:{:.2}", (reward / risk).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
}

fn percent_1dp(fraction: Decimal) -> Decimal {
    round_half_away(fraction * Decimal::ONE_HUNDRED, 1)
}

fn round_half_away(value: Decimal, places: u32) -> Decimal {
    value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero).normalize()
}

/// A number with its sign always shown: "+108", "-50", "0".
pub fn signed(value: Decimal) -> String {
    if value.is_sign_positive() && !value.is_zero() { format!("+{value}") } else { value.to_string() }
}

/// "+$540.00" in dollars, "-12.30 EUR" in anything else.
pub fn money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() { "-" } else { "+" };
    let magnitude = format!("{:.2}", rounded.abs());
    match currency {
        "USD" | "USDT" | "USDC" => format!("{sign}${magnitude}"),
        other => format!("{sign}{magnitude} {other}"),
    }
}

/// "2d 3h", "3h 15m", "15m", "45s".
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
