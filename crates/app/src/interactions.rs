//! Discord interactions: the Open Trade / Ignore / Details buttons, the trade modal, and slash commands.
//! Interactions arriving at `POST /discord/interactions` (and, later, over the gateway) go through this one
//! handler after their signature was checked. Every answer is immediate (well inside Discord's 3 s), and
//! every refusal is ephemeral and says why; nothing is stored unless the input was valid.

use crate::outbox::signal_view;
use bus::{Bus, Event};
use discord::interactions::{Incoming, InteractionUser, ephemeral_message, pong, update_message};
use discord::render::{CustomId, TradeModalDefaults, ignored_message, trade_modal};
use domain::{Clock, Entry, NewTrade, NotificationId, TradeRequest};
use std::sync::Arc;
use store::{Notification, Store, User};
use twilight_model::http::interaction::InteractionResponse;

const NOT_LINKED: &str = "Your Discord account is not linked to Signalpost yet. Open the dashboard, copy your \
                          one-time code, and run `/link <code>` here.";

pub struct InteractionHandler {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
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
        InteractionHandler { store, bus, clock }
    }

    pub async fn handle(&self, incoming: Incoming) -> InteractionResponse {
        let answer = match incoming {
            Incoming::Ping => return pong(),
            Incoming::Button { custom_id, user, .. } => self.button(custom_id, &user).await,
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
        match self.store.get_notification(id).await? {
            Some(n) if n.user_id == owner.id => Ok((owner, n)),
            Some(_) => Err(Refusal("That signal was sent to someone else; you can only act on your own.".into())),
            None => Err(Refusal(format!("There is no signal #{id}."))),
        }
    }

    async fn button(&self, custom_id: CustomId, user: &InteractionUser) -> Result<InteractionResponse, Refusal> {
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
            CustomId::Details(_) => {
                let pct = |p: Option<f64>| p.map_or("n/a".to_string(), |p| format!("{:.1}%", p * 100.0));
                Ok(ephemeral_message(&format!(
                    "**{} {} {}**\nStage 1 (rules) probability: {}\nStage 2 (model) probability: {}\nModel: {}\n\
                     Entry {} · Stop loss {} · Take profit {}",
                    signal.symbol,
                    signal.timeframe.map_or(String::new(), |t| t.to_string()),
                    signal.side.as_str().to_uppercase(),
                    pct(signal.stage1_prob),
                    pct(signal.stage2_prob),
                    signal.model_version.as_deref().unwrap_or("none"),
                    view.entry,
                    view.stop_loss,
                    view.take_profit,
                )))
            }
            CustomId::TradeModal(_) => Err(Refusal("That control is not a button.".into())),
        }
    }

    async fn open_trade(
        &self,
        id: NotificationId,
        values: &std::collections::HashMap<String, String>,
        user: &InteractionUser,
    ) -> Result<InteractionResponse, Refusal> {
        let (owner, notification) = self.own_notification(id, user).await?;
        let (_, signal) = signal_view(self.store.as_ref(), &notification).await.map_err(Refusal)?;
        let value = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
        // A replayed market runs on its own clock; the trade is stamped with the market's time when we know it.
        let opened_at = match self.store.last_price(&signal.symbol).await? {
            Some(tick) => tick.time,
            None => self.clock.now(),
        };
        let request = TradeRequest {
            symbol: signal.symbol.as_str(),
            side: signal.side.as_str(),
            entry: value("entry"),
            lots: value("lots"),
            stop_loss: Some(value("stop_loss")),
            take_profit: Some(value("take_profit")),
        };
        let mut new =
            NewTrade::parse(owner.id, &request, opened_at).map_err(|e| Refusal(format!("Nothing was opened: {e}.")))?;
        new.notes = Some(value("notes").trim()).filter(|n| !n.is_empty()).map(|n| n.chars().take(1000).collect());
        new.signal_id = Some(notification.signal_id);
        new.notification_id = Some(id);
        let opened = self.store.open_trade(&new).await?;
        self.store.acknowledge_notification(id).await?;
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
