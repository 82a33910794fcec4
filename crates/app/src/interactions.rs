//! Discord interactions: the Open Trade / Ignore / Details buttons, the trade modal, slash commands and the
//! `/settings` controls. Interactions arriving at `POST /discord/interactions` (and over the gateway) go
//! through this one handler after their signature was checked. Every answer is immediate (well inside
//! Discord's 3 s), and every refusal is ephemeral and says why; nothing is stored unless the input was valid.
//!
//! Details is the one answer with slow work in it (reading candles, computing indicators, drawing a PNG): with
//! a bot token it answers "thinking…" (deferred, ephemeral) at once and sends the details as a follow-up
//! from a task of its own; without one it answers with the text details directly.

use crate::outbox::signal_view;
use bus::{Bus, Event};
use discord::chart::{ChartLevels, render_png};
use discord::interactions::{
    Incoming, InteractionUser, deferred, ephemeral_embeds, ephemeral_message, pong, update_message,
};
use discord::render::{CustomId, SignalView, TradeModalDefaults, ignored_message, trade_modal};
use discord::{FollowUp, FollowUps, OutgoingFile, OutgoingMessage};
use domain::{Clock, Entry, NotificationId, Signal};
// The indicator state lives in the engine so the dashboard's Details computes exactly the same numbers.
pub use engine::{IndicatorState, indicator_state};
use rust_decimal::prelude::ToPrimitive;
use std::sync::Arc;
use store::{Notification, Store, User, actions};
use twilight_model::http::interaction::InteractionResponse;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder, ImageSource};

const NOT_LINKED: &str = "Your Discord account is not linked to Signalpost yet. Open the dashboard, copy your \
                          one-time code, and run `/link <code>` here.";

pub struct InteractionHandler {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    /// Where deferred answers are sent; `None` without a bot token and application id.
    follow_ups: Option<Arc<dyn FollowUps>>,
}

impl std::fmt::Debug for InteractionHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InteractionHandler")
    }
}

/// A refusal shown to the user, ephemeral.
struct Refusal(String);

impl<E: std::fmt::Display> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal(e.to_string())
    }
}

impl InteractionHandler {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, clock: Arc<dyn Clock>) -> Self {
        InteractionHandler { store, bus, clock, follow_ups: None }
    }

    /// Lets slow answers (Details) defer and follow up through `follow_ups`.
    pub fn with_follow_ups(mut self, follow_ups: Option<Arc<dyn FollowUps>>) -> Self {
        self.follow_ups = follow_ups;
        self
    }

    pub async fn handle(&self, incoming: Incoming) -> InteractionResponse {
        let answer = match incoming {
            Incoming::Ping => return pong(),
            Incoming::Button { custom_id, user, application_id, token, .. } => {
                self.button(custom_id, &user, &application_id, &token).await
            }
            Incoming::SettingsComponent { control, values, user, .. } => match self.linked(&user).await {
                Ok(owner) => {
                    let commands = crate::slash::SlashCommands {
                        store: self.store.as_ref(),
                        bus: self.bus.as_ref(),
                        clock: self.clock.as_ref(),
                    };
                    Ok(commands.settings_component(&control, &values, &owner).await)
                }
                Err(refusal) => Err(refusal),
            },
            Incoming::ModalSubmit { notification_id, values, user, .. } => {
                self.open_trade(NotificationId(notification_id), &values, &user).await
            }
            Incoming::SlashCommand { name, options, user, .. } => {
                let commands = crate::slash::SlashCommands {
                    store: self.store.as_ref(),
                    bus: self.bus.as_ref(),
                    clock: self.clock.as_ref(),
                };
                if name == crate::slash::LINK {
                    Ok(commands.link(&options, &user).await)
                } else {
                    match self.linked(&user).await {
                        Ok(owner) => Ok(commands.run(&name, &options, &owner).await),
                        Err(refusal) => Err(refusal),
                    }
                }
            }
            Incoming::Unknown { kind } => {
                Err(Refusal(format!("Signalpost does not handle this kind of interaction (type {kind}).")))
            }
        };
        answer.unwrap_or_else(|Refusal(reason)| ephemeral_message(&reason))
    }

    async fn linked(&self, user: &InteractionUser) -> Result<User, Refusal> {
        self.store.user_by_discord_id(&user.id).await?.ok_or_else(|| Refusal(NOT_LINKED.into()))
    }

    /// The notification, if it exists and belongs to this Discord user.
    async fn own_notification(
        &self,
        id: NotificationId,
        user: &InteractionUser,
    ) -> Result<(User, Notification), Refusal> {
        let owner = self.linked(user).await?;
        let (notification, _) = actions::own_notification(self.store.as_ref(), owner.id, id).await.map_err(refusal)?;
        Ok((owner, notification))
    }

    async fn button(
        &self,
        custom_id: CustomId,
        user: &InteractionUser,
        application_id: &str,
        token: &str,
    ) -> Result<InteractionResponse, Refusal> {
        let id = NotificationId(custom_id.notification_id());
        let (owner, notification) = self.own_notification(id, user).await?;
        let (view, signal) = signal_view(self.store.as_ref(), &notification).await.map_err(Refusal)?;
        match custom_id {
            CustomId::Open(_) => {
                let entry = match signal.entry {
                    Entry::Price { price } => price,
                    _ => view.entry,
                };
                let defaults = TradeModalDefaults {
                    entry,
                    lots: owner.default_lots,
                    stop_loss: signal.stop_loss,
                    take_profit: signal.take_profits.first().copied(),
                };
                Ok(trade_modal(id.0, signal.symbol.as_str(), signal.side, &defaults))
            }
            CustomId::Ignore(_) => {
                self.store.acknowledge_notification(id).await?;
                Ok(update_message(&ignored_message(&view)))
            }
            CustomId::Details(_) => Ok(self.details(view, signal, application_id, token).await),
            CustomId::TradeModal(_) => Err(Refusal("That control is not a button.".into())),
        }
    }

    async fn open_trade(
        &self,
        id: NotificationId,
        values: &std::collections::HashMap<String, String>,
        user: &InteractionUser,
    ) -> Result<InteractionResponse, Refusal> {
        let owner = self.linked(user).await?;
        let value = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
        let form = actions::TradeForm {
            entry: value("entry"),
            lots: value("lots"),
            stop_loss: value("stop_loss"),
            take_profit: value("take_profit"),
            notes: value("notes"),
        };
        // The same action the dashboard's Open Trade form runs, so both make the same trade.
        let opened = actions::open_from_notification(self.store.as_ref(), owner.id, id, &form, self.clock.now())
            .await
            .map_err(refusal)?;
        let trade = &opened.trade;
        if opened.created {
            if let Err(error) = self.bus.publish(Event::TradeOpened { trade: trade.clone() }).await {
                tracing::warn!(%error, "could not announce a trade; the monitor will find it in the store");
            }
            Ok(ephemeral_message(&format!(
                "Trade #{} opened: {} {} {} lots at {}, stop loss {}, take profit {}.",
                trade.id,
                trade.symbol,
                trade.side.as_str().to_uppercase(),
                trade.lots,
                trade.entry,
                trade.stop_loss.map_or("none".into(), |p| p.to_string()),
                trade.take_profit.map_or("none".into(), |p| p.to_string()),
            )))
        } else {
            Ok(ephemeral_message(&format!(
                "This signal is already open as trade #{}; nothing new was opened.",
                trade.id
            )))
        }
    }
}

/// Candles read for Details (the dashboard's Details reads as many): see [`engine::snapshot::HISTORY_CANDLES`].
pub const DETAILS_CANDLES: u32 = engine::snapshot::HISTORY_CANDLES;
/// Candles drawn on the Details chart.
pub const CHART_CANDLES: usize = discord::chart::MAX_CANDLES;
/// The chart's file name; the embed shows it as `attachment://chart.png`.
pub const CHART_FILE: &str = "chart.png";

impl InteractionHandler {
    /// Details: with follow-ups, "thinking…" now and the details with the chart from a task; without, the
    /// text details now.
    async fn details(
        &self,
        view: SignalView,
        signal: Signal,
        application_id: &str,
        token: &str,
    ) -> InteractionResponse {
        let Some(follow_ups) = self.follow_ups.clone() else {
            let message = match details_message(self.store.as_ref(), &view, &signal, false).await {
                Ok(details) => details.message,
                Err(error) => {
                    tracing::error!(%error, "could not read candles for Details");
                    details_embed(&view, &signal, None, "The candle history could not be read just now.")
                }
            };
            let mut answer = ephemeral_embeds(&message);
            if let Some(data) = answer.data.as_mut() {
                data.content = Some(
                    "The chart is sent only when Signalpost has its bot token (DISCORD_TOKEN and \
                     DISCORD_APPLICATION_ID); here are the details."
                        .into(),
                );
            }
            return answer;
        };
        let store = self.store.clone();
        let (application_id, token) = (application_id.to_string(), token.to_string());
        tokio::spawn(async move {
            let follow_up = match details_message(store.as_ref(), &view, &signal, true).await {
                Ok(details) => {
                    FollowUp { content: None, message: details.message, files: details.chart, ephemeral: true }
                }
                Err(error) => {
                    tracing::error!(%error, "could not build Details");
                    FollowUp {
                        content: Some("Signalpost could not build the details just now. Please try again.".into()),
                        message: OutgoingMessage { embeds: Vec::new(), components: Vec::new() },
                        files: Vec::new(),
                        ephemeral: true,
                    }
                }
            };
            if let Err(error) = follow_ups.follow_up(&application_id, &token, &follow_up).await {
                tracing::warn!(%error, "could not send the Details follow-up");
            }
        });
        deferred(true)
    }
}

struct Details {
    message: OutgoingMessage,
    chart: Vec<OutgoingFile>,
}

/// Reads the candles up to the signal's candle and builds the embed, and the chart when asked for.
async fn details_message(
    store: &dyn Store,
    view: &SignalView,
    signal: &Signal,
    with_chart: bool,
) -> Result<Details, store::StoreError> {
    // A signal is stamped with its candle's close; the candle itself opened one timeframe earlier.
    let candles = match signal.timeframe {
        Some(timeframe) => {
            let until = signal.created_at - timeframe.duration();
            store.recent_candles(&signal.symbol, timeframe, until, DETAILS_CANDLES).await?
        }
        None => Vec::new(),
    };
    let state = indicator_state(&candles);
    if candles.is_empty() {
        let note = format!(
            "No {} {} candles are stored up to this signal, so there is no chart and no indicator state.",
            signal.symbol,
            signal.timeframe.map_or("(no timeframe)", |t| t.as_str())
        );
        return Ok(Details { message: details_embed(view, signal, None, &note), chart: Vec::new() });
    }
    if !with_chart {
        return Ok(Details { message: details_embed(view, signal, state.as_ref(), ""), chart: Vec::new() });
    }
    let levels = ChartLevels {
        entry: view.entry.value(),
        stop_loss: view.stop_loss.value(),
        take_profit: view.take_profit.value(),
    };
    let recent = candles[candles.len().saturating_sub(CHART_CANDLES)..].to_vec();
    // Drawing and compressing take a few milliseconds of CPU: off the async workers.
    let drawn = tokio::task::spawn_blocking(move || render_png(&recent, &levels)).await;
    match drawn {
        Ok(Ok(png)) => {
            let message = details_embed_with(view, signal, state.as_ref(), "", true);
            let file = OutgoingFile {
                filename: CHART_FILE.into(),
                description: Some(format!(
                    "{} {} candles with entry, stop loss and take profit",
                    signal.symbol,
                    view.timeframe.map_or("", |t| t.as_str())
                )),
                bytes: png,
            };
            Ok(Details { message, chart: vec![file] })
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not draw the Details chart");
            let note = format!("The chart could not be drawn ({error}).");
            Ok(Details { message: details_embed(view, signal, state.as_ref(), &note), chart: Vec::new() })
        }
        Err(error) => {
            tracing::error!(%error, "the chart task failed");
            let note = "The chart could not be drawn.";
            Ok(Details { message: details_embed(view, signal, state.as_ref(), note), chart: Vec::new() })
        }
    }
}

/// The Details embed: probabilities, confidence, model, levels, and the indicator state when there is one.
fn details_embed(view: &SignalView, signal: &Signal, state: Option<&IndicatorState>, note: &str) -> OutgoingMessage {
    details_embed_with(view, signal, state, note, false)
}

/// [`details_embed`], showing the attached chart inside the embed when `chart` is set.
fn details_embed_with(
    view: &SignalView,
    signal: &Signal,
    state: Option<&IndicatorState>,
    note: &str,
    chart: bool,
) -> OutgoingMessage {
    let pct = |p: Option<f64>| p.map_or("n/a".to_string(), |p| format!("{:.1}%", p * 100.0));
    let number = |x: Option<f64>, places: usize| x.map_or("warming up".to_string(), |x| format!("{x:.places$}"));
    let instrument = &view.instrument;
    let title = format!(
        "Details · {} {} {}",
        signal.symbol,
        signal.timeframe.map_or("", |t| t.as_str()),
        signal.side.as_str().to_uppercase()
    );
    let confidence =
        signal.confidence.and_then(|c| c.to_f64()).map_or("n/a".to_string(), |c| format!("{:.1}%", c * 100.0));
    let mut embed = EmbedBuilder::new()
        .title(title)
        .color(discord::render::GREY)
        .field(EmbedFieldBuilder::new("Stage 1 (rules) probability", pct(signal.stage1_prob)).inline())
        .field(EmbedFieldBuilder::new("Stage 2 (model) probability", pct(signal.stage2_prob)).inline())
        .field(EmbedFieldBuilder::new("Confidence", confidence).inline())
        .field(EmbedFieldBuilder::new("Model", signal.model_version.as_deref().unwrap_or("none")).inline())
        .field(EmbedFieldBuilder::new("Entry", view.entry.to_string()).inline())
        .field(EmbedFieldBuilder::new("Stop loss", view.stop_loss.to_string()).inline())
        .field(EmbedFieldBuilder::new("Take profit", view.take_profit.to_string()).inline());
    if let Some(state) = state {
        let atr = match (state.atr14, instrument.pip_size.and_then(|p| p.to_f64())) {
            (Some(atr), Some(pip)) => {
                format!("{atr:.prec$} ({:.1} pips)", atr / pip, prec = instrument.price_precision as usize)
            }
            (atr, _) => number(atr, instrument.price_precision as usize),
        };
        embed = embed
            .field(EmbedFieldBuilder::new("RSI(14)", number(state.rsi14, 1)).inline())
            .field(
                EmbedFieldBuilder::new(
                    "MACD histogram (12, 26, 9)",
                    number(state.macd_histogram, instrument.price_precision as usize + 1),
                )
                .inline(),
            )
            .field(EmbedFieldBuilder::new("Bollinger %B (20, 2)", number(state.bollinger_percent_b, 2)).inline())
            .field(EmbedFieldBuilder::new("ATR(14)", atr).inline())
            .field(EmbedFieldBuilder::new("ADX(14)", number(state.adx14, 1)).inline())
            .field(EmbedFieldBuilder::new("Indicators at", state.at.format("%Y-%m-%d %H:%M UTC").to_string()).inline());
    }
    let mut description = String::new();
    if !note.is_empty() {
        description.push_str(note);
    }
    if !description.is_empty() {
        embed = embed.description(description);
    }
    if chart && let Ok(image) = ImageSource::attachment(CHART_FILE) {
        embed = embed
            .image(image)
            .footer(EmbedFooterBuilder::new("Chart: blue line entry · orange stop loss · green take profit"));
    }
    OutgoingMessage { embeds: vec![embed.build()], components: Vec::new() }
}

/// An action's refusal, as a sentence to show the user.
fn refusal(error: actions::ActionError) -> Refusal {
    Refusal(crate::slash::sentence(&error.to_string()))
}
