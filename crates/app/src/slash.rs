//! Slash commands: `/link`, `/settings`, `/trades`, `/history`, `/stats` and `/stop`, and their registration
//! with Discord at start-up.
//!
//! Every command acts on the caller's own data only: the interaction handler resolves the Discord user to
//! a Signalpost user first (and answers an unlinked caller itself), except for `/link`, which is how a
//! caller gets linked. Every answer is ephemeral and stays inside Discord's limits (2000 characters of
//! content; 25 fields, 1024 characters a field value and 6000 characters in all for an embed).
//!
//! `/link` takes a one-time code made by `signalpost users link-code` (later by the dashboard). Only the
//! SHA-256 of a code is stored; a code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L),
//! lasts [`LINK_CODE_TTL_MINUTES`] minutes and is spent by its first successful use.

use anyhow::Context;
use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use discord::interactions::{InteractionUser, ephemeral_embeds, ephemeral_message};
use discord::render::{duration, money, signed};
use discord::{DiscordNotifier, OutgoingMessage};
use domain::{
    Clock, CloseReason, Delivery, Instrument, InstrumentRegistry, Price, RateBook, Symbol, Timeframe, Trade, TradeId,
    TradeResult, TradeStatus, UserSettings, pnl,
};
use rust_decimal::{Decimal, RoundingStrategy};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use store::{LinkOutcome, Store, TradeFilter, User, actions};
use tokio_util::sync::CancellationToken;
use twilight_model::channel::message::Embed;
use twilight_model::http::interaction::InteractionResponse;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder};

/// The one command an unlinked caller may use.
pub const LINK: &str = "link";
/// How long a link code can be redeemed after it was made.
pub const LINK_CODE_TTL_MINUTES: i64 = 15;
/// Characters in a link code.
pub const LINK_CODE_LENGTH: usize = 8;
/// Letters and digits nobody confuses when reading a code off a screen.
const LINK_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Closed trades a `/history` page shows.
pub const HISTORY_PAGE_SIZE: u32 = 10;
/// Open trades `/trades` lists; the rest are counted, so the embed stays inside Discord's limits.
const TRADES_SHOWN: u32 = 20;

const EMBED_TOTAL_MAX: usize = 6000;
const EMBED_FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
const DESCRIPTION_MAX: usize = 4096;
const TITLE_MAX: usize = 256;
/// Where a value is unknown; Discord refuses empty field values.
const NONE: &str = "—";

/// A fresh one-time code from the operating system's randomness.
pub fn new_link_code() -> anyhow::Result<String> {
    let mut code = String::with_capacity(LINK_CODE_LENGTH);
    // Bytes at or above the largest multiple of the alphabet's size are dropped so every character is
    // equally likely.
    let limit = 256 - 256 % LINK_CODE_ALPHABET.len();
    while code.len() < LINK_CODE_LENGTH {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the operating system gave no randomness: {e}"))?;
        for b in bytes.into_iter().map(usize::from).filter(|b| *b < limit) {
            if code.len() < LINK_CODE_LENGTH {
                code.push(char::from(LINK_CODE_ALPHABET[b % LINK_CODE_ALPHABET.len()]));
            }
        }
    }
    Ok(code)
}

/// What a person typed, as the code it means: case, spaces and dashes do not matter.
pub fn normalize_link_code(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect()
}

/// The form a code is stored and looked up in.
pub fn hash_link_code(code: &str) -> String {
    let digest =
        Sha256::new().chain_update(b"signalpost link code\0").chain_update(normalize_link_code(code)).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes the commands the application's global slash commands. A failure is logged, never fatal: the
/// commands registered by an earlier start keep working, and the next start tries again.
pub async fn register(notifier: Arc<DiscordNotifier>, application_id: String, shutdown: CancellationToken) {
    let commands = discord::commands::slash_commands();
    tokio::select! {
        _ = shutdown.cancelled() => {}
        result = notifier.register_commands(&application_id, &commands) => match result {
            Ok(()) => tracing::info!(count = commands.len(), "slash commands registered"),
            Err(error) => tracing::warn!(%error, "could not register the slash commands with Discord"),
        },
    }
}

/// The slash-command side of the interaction handler, borrowing its store, bus and clock.
pub struct SlashCommands<'a> {
    pub store: &'a dyn Store,
    pub bus: &'a dyn Bus,
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for SlashCommands<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlashCommands")
    }
}

/// The answer was a refusal or a report, already written for the user.
type Answer = anyhow::Result<InteractionResponse>;

impl SlashCommands<'_> {
    /// `/link code:<code>`: the only command that works before the caller is linked.
    pub async fn link(&self, options: &HashMap<String, String>, user: &InteractionUser) -> InteractionResponse {
        answer_or_apologise("link", self.try_link(options, user).await)
    }

    /// Every other command, for the caller's own account.
    pub async fn run(&self, name: &str, options: &HashMap<String, String>, owner: &User) -> InteractionResponse {
        let answer = match name {
            "settings" => self.settings(options, owner).await,
            "trades" => self.trades(owner).await,
            "history" => self.history(options, owner).await,
            "stats" => self.stats(owner).await,
            "stop" => self.stop(options, owner).await,
            other => Ok(ephemeral_message(&format!(
                "Signalpost has no `/{}` command; try `/trades`, `/history`, `/stats`, `/settings` or `/stop`.",
                truncate(other, 32)
            ))),
        };
        answer_or_apologise(name, answer)
    }

    async fn try_link(&self, options: &HashMap<String, String>, user: &InteractionUser) -> Answer {
        let Some(code) = options.get("code").map(|c| normalize_link_code(c)).filter(|c| !c.is_empty()) else {
            return Ok(ephemeral_message(
                "Give the one-time code from the dashboard: `/link code:ABCD2345`. Run \
                 `signalpost users link-code` on the server to make one.",
            ));
        };
        let outcome = self
            .store
            .redeem_link_code(&hash_link_code(&code), &user.id, self.clock.now())
            .await
            .context("could not redeem a link code")?;
        Ok(ephemeral_message(&match outcome {
            LinkOutcome::Linked(linked) => format!(
                "Linked: this Discord account now belongs to the Signalpost account **{}**. Try `/trades`, \
                 `/stats` or `/settings`.",
                truncate(&linked.display_name, 100)
            ),
            LinkOutcome::InvalidCode => format!(
                "That code does not work: it is unknown, was already used, was replaced by a newer one, or has \
                 expired (codes last {LINK_CODE_TTL_MINUTES} minutes). Get a new code and run `/link` again."
            ),
            LinkOutcome::DiscordAccountTaken => "This Discord account is already linked to another Signalpost \
                                                  account, so nothing changed. The code was not used up."
                .to_string(),
        }))
    }

    /// `/settings`: the caller's settings with the controls that change them. `pairs:<text>` sets the
    /// preferred pairs from a list first (`EURUSD, XAUUSD, BTCUSDT`, or `all`), for pairs the menu lacks.
    async fn settings(&self, options: &HashMap<String, String>, owner: &User) -> Answer {
        let mut s = self.store.get_settings(owner.id).await.context("could not read settings")?;
        if let Some(text) = options.get("pairs") {
            match parse_pair_list(text) {
                Ok(pairs) => {
                    let new = UserSettings { preferred_pairs: pairs, ..s.clone() };
                    if let Err(error) = new.validate() {
                        return Ok(ephemeral_message(&format!("Nothing was changed: {error}.")));
                    }
                    self.store.save_settings(owner.id, &new).await.context("could not save settings")?;
                    self.settings_changed(owner).await;
                    s = new;
                }
                Err(reason) => return Ok(ephemeral_message(&format!("Nothing was changed: {reason}"))),
            }
        }
        Ok(ephemeral_embeds(&settings_view(&s, owner)))
    }

    /// A click or choice on one of the `/settings` controls (custom id `settings:<control>`), for the caller
    /// who made it: it changes their settings only, whoever's message the control sits on. A valid change
    /// is saved and the message is updated in place (type 7); anything else is refused privately and
    /// changes nothing.
    pub async fn settings_component(&self, control: &str, values: &[String], owner: &User) -> InteractionResponse {
        let answer = async {
            let current = self.store.get_settings(owner.id).await.context("could not read settings")?;
            let new = match apply_settings_control(&current, control, values) {
                Ok(new) => new,
                Err(reason) => return Ok(ephemeral_message(&format!("Nothing was changed: {reason}"))),
            };
            if let Err(error) = new.validate() {
                return Ok(ephemeral_message(&format!("Nothing was changed: {error}.")));
            }
            if new != current {
                self.store.save_settings(owner.id, &new).await.context("could not save settings")?;
                self.settings_changed(owner).await;
            }
            Ok(discord::interactions::update_message(&settings_view(&new, owner)))
        };
        answer_or_apologise("settings", answer.await)
    }

    /// Tells the live feeds to re-derive their pairs. A lost event only delays that to their periodic check.
    async fn settings_changed(&self, owner: &User) {
        if let Err(error) = self.bus.publish(Event::SettingsChanged { user_id: owner.id }).await {
            tracing::warn!(%error, "could not announce a settings change; the feeds will find it in the store");
        }
    }

    async fn trades(&self, owner: &User) -> Answer {
        let filter = TradeFilter {
            user_id: Some(owner.id),
            status: Some(TradeStatus::Open),
            limit: TRADES_SHOWN,
            ..TradeFilter::default()
        };
        let trades = self.store.list_trades(&filter).await.context("could not list open trades")?;
        if trades.is_empty() {
            return Ok(ephemeral_message("You have no open trades."));
        }
        let total = self.store.count_trades(&filter).await.context("could not count open trades")?;
        let currency = owner.account_currency.as_str();
        let mut embed = EmbedDraft::new(&format!("Your open trades ({total})"));
        let mut total_profit = Decimal::ZERO;
        let mut priced = 0usize;
        for trade in &trades {
            let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok();
            let mut lines = vec![format!(
                "Entry {} · SL {} · TP {}",
                show_price(instrument, trade.entry),
                trade.stop_loss.map_or(NONE.to_string(), |p| show_price(instrument, p)),
                trade.take_profit.map_or(NONE.to_string(), |p| show_price(instrument, p)),
            )];
            let tick = self.store.last_price(&trade.symbol).await.context("could not read the latest price")?;
            match (instrument, tick) {
                (Some(instrument), Some(tick)) => {
                    let now = tick.exit_price(trade.side);
                    let rates = self.rates(instrument, currency).await?;
                    let live = pnl::outcome(instrument, trade.side, trade.entry, now, trade.lots, &rates, currency);
                    if let Some(profit) = live.profit {
                        total_profit += profit;
                        priced += 1;
                    }
                    lines.push(format!(
                        "Now {} · {} · {}",
                        show_price(Some(instrument), now),
                        movement(&live),
                        live.profit.map_or_else(|| format!("no {currency} rate yet"), |p| money(p, currency)),
                    ));
                }
                _ => lines.push("No price seen yet, so no live P&L.".into()),
            }
            lines.push(format!("Opened {}", when(trade.opened_at)));
            embed.field(&trade_heading(trade), lines.join("\n"));
        }
        let mut description = format!("Live P&L at the latest price: {}", money(total_profit, currency));
        if priced < trades.len() {
            description.push_str(&format!(" (over the {priced} trades with a price)"));
        }
        if total > trades.len() as u64 {
            description.push_str(&format!("\nShowing the newest {}; the dashboard lists all {total}.", trades.len()));
        }
        embed.description(&description);
        embed.footer("Close one at market with /stop trade_id:<id>");
        Ok(embed.answer())
    }

    async fn history(&self, options: &HashMap<String, String>, owner: &User) -> Answer {
        let page = match options.get("page").map(|p| p.trim().parse::<u32>()) {
            None => 1,
            Some(Ok(page)) if page >= 1 => page,
            Some(_) => return Ok(ephemeral_message("`page` must be a whole number, 1 or more.")),
        };
        let mut filter = TradeFilter {
            user_id: Some(owner.id),
            status: Some(TradeStatus::Closed),
            limit: HISTORY_PAGE_SIZE,
            ..TradeFilter::default()
        };
        let total = self.store.count_trades(&filter).await.context("could not count closed trades")?;
        if total == 0 {
            return Ok(ephemeral_message("You have no closed trades yet."));
        }
        let pages = total.div_ceil(u64::from(HISTORY_PAGE_SIZE));
        if u64::from(page) > pages {
            return Ok(ephemeral_message(&format!(
                "There is no page {page}: your {total} closed trades fill {pages} page{}.",
                if pages == 1 { "" } else { "s" }
            )));
        }
        filter.offset = (page - 1) * HISTORY_PAGE_SIZE;
        let trades = self.store.list_trades(&filter).await.context("could not list closed trades")?;
        let currency = owner.account_currency.as_str();
        let mut embed = EmbedDraft::new(&format!("Your closed trades · page {page} of {pages}"));
        embed.description(&format!("{total} closed trades, newest first."));
        for trade in &trades {
            let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok();
            let exit = trade.exit_price.map_or(NONE.to_string(), |p| show_price(instrument, p));
            let moved = match (trade.pips, instrument, trade.exit_price) {
                (Some(pips), _, _) => format!("{} pips", signed(round(pips, 1))),
                (None, _, Some(exit)) => {
                    let change = (exit.value() - trade.entry.value()) * trade.side.direction();
                    let percent = round(change / trade.entry.value() * Decimal::ONE_HUNDRED, 2);
                    format!("{} ({}%)", signed(change.normalize()), signed(percent))
                }
                _ => NONE.to_string(),
            };
            let profit = trade.profit.map_or(NONE.to_string(), |p| money(p, currency));
            let reason = trade.close_reason.map_or(NONE, close_reason_words);
            let held = trade.closed_at.map_or(NONE.to_string(), |c| duration((c - trade.opened_at).num_seconds()));
            let closed = trade.closed_at.map_or(NONE.to_string(), when);
            embed.field(
                &format!("{} · {}", trade_heading(trade), trade.result.map_or(NONE, result_word)),
                format!(
                    "{} → {exit} · {moved} · {profit}\n{reason} · closed {closed} · held {held}",
                    show_price(instrument, trade.entry)
                ),
            );
        }
        if u64::from(page) < pages {
            embed.footer(&format!("Next: /history page:{}", page + 1));
        }
        Ok(embed.answer())
    }

    async fn stats(&self, owner: &User) -> Answer {
        let closed = self.all_closed(owner).await?;
        if closed.is_empty() {
            return Ok(ephemeral_message("You have no closed trades yet, so there are no statistics."));
        }
        let currency = owner.account_currency.as_str();
        // The same figures the dashboard's /stats shows, from one place.
        let summary = domain::stats::summary(&closed);
        let (wins, losses, even) = (summary.wins, summary.losses, summary.breakeven);

        let mut embed = EmbedDraft::new("Your trading statistics");
        embed.description(&format!("Over your {} closed trades.", closed.len()));
        let win_rate = summary.win_rate.unwrap_or_default();
        embed.field("Win rate", format!("{}% ({wins} W / {losses} L / {even} BE)", round(win_rate, 1)));
        let mut pnl = money(summary.total_profit, currency);
        if summary.unpriced > 0 {
            pnl.push_str(&format!(" ({} trades without a conversion rate left out)", summary.unpriced));
        }
        embed.field("Total P&L", pnl);
        if let Some(pips) = summary.total_pips {
            embed.field("Total pips", format!("{} pips", signed(round(pips, 1))));
        }
        embed.field(
            "Average R:R",
            match summary.average_r {
                None => "— (no closed trade had a stop loss)".to_string(),
                Some(average) => format!(
                    "{}R realised, over {} trades with a stop loss",
                    signed(round(average, 2)),
                    summary.r_trades
                ),
            },
        );
        embed.field("Average holding time", summary.average_holding_seconds.map_or(NONE.to_string(), duration));
        if let Some(best) = closed.iter().filter(|t| t.profit.is_some()).max_by_key(|t| t.profit) {
            embed.field(
                "Best trade",
                format!("#{} {} {}", best.id, best.symbol, money(best.profit.unwrap_or_default(), currency)),
            );
        }
        if let Some(worst) = closed.iter().filter(|t| t.profit.is_some()).min_by_key(|t| t.profit) {
            embed.field(
                "Worst trade",
                format!("#{} {} {}", worst.id, worst.symbol, money(worst.profit.unwrap_or_default(), currency)),
            );
        }
        Ok(embed.answer())
    }

    async fn stop(&self, options: &HashMap<String, String>, owner: &User) -> Answer {
        let Some(id) = options.get("trade_id").and_then(|t| t.trim().parse::<i64>().ok()).filter(|id| *id > 0) else {
            return Ok(ephemeral_message("Give the trade to close: `/stop trade_id:<id>` (see `/trades`)."));
        };
        let id = TradeId(id);
        // The same action as the dashboard's close button.
        let closed = match actions::close_at_market(self.store, owner, id).await {
            Ok(closed) => closed,
            Err(actions::ActionError::Store(error)) => {
                return Err(anyhow::Error::new(error).context("could not close the trade"));
            }
            Err(refused) => return Ok(ephemeral_message(&sentence(&refused.to_string()))),
        };
        if let Err(error) = self.bus.publish(Event::TradeClosed { trade: closed.clone() }).await {
            tracing::warn!(%error, trade = %id, "could not announce a close; the monitor will see it in the store");
        }
        let currency = owner.account_currency.as_str();
        let exit = closed.exit_price.map_or_else(String::new, |p| p.to_string());
        match discord::render::trade_closed_message(&closed, currency) {
            // The close report is the same embed the owner gets by DM, already inside Discord's limits.
            Ok(message) => Ok(ephemeral_embeds(&message)),
            Err(_) => Ok(ephemeral_message(&format!("Trade #{id} closed at {exit}."))),
        }
    }

    /// Every closed trade of the caller, newest first.
    async fn all_closed(&self, owner: &User) -> anyhow::Result<Vec<Trade>> {
        const PAGE: u32 = 500;
        let mut filter = TradeFilter {
            user_id: Some(owner.id),
            status: Some(TradeStatus::Closed),
            limit: PAGE,
            ..TradeFilter::default()
        };
        let mut all = Vec::new();
        loop {
            let page = self.store.list_trades(&filter).await.context("could not list closed trades")?;
            let done = page.len() < PAGE as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
            filter.offset += PAGE;
        }
    }

    /// The latest prices that convert the instrument's quote currency into the account currency.
    async fn rates(&self, instrument: &Instrument, account: &str) -> anyhow::Result<RateBook> {
        actions::rates(self.store, instrument, account).await.context("could not read a rate")
    }
}

/// A refusal's reason as a sentence: capitalised, with a full stop.
pub(crate) fn sentence(reason: &str) -> String {
    let mut chars = reason.chars();
    let capitalised = match chars.next() {
        Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    };
    if capitalised.ends_with('.') { capitalised } else { format!("{capitalised}.") }
}

/// The custom ids of the `/settings` controls, after [`discord::interactions::SETTINGS_PREFIX`].
pub mod controls {
    pub const TIMEFRAMES: &str = "timeframes";
    pub const PAIRS: &str = "pairs";
    pub const MIN_CONFIDENCE: &str = "min_confidence";
    pub const LIMITS: &str = "limits";
    pub const NOTIFICATIONS: &str = "notifications";
    pub const ML_ONLY: &str = "ml_only";
}

/// The pairs the `/settings` menu offers. Discord allows 25 options in a select, and the registry has more,
/// so these are the most traded of each kind: the seven forex majors, three crosses, gold and silver, five
/// large crypto pairs and eight US stocks and ETFs. Other pairs are set with `/settings pairs:<list>` or on
/// the dashboard, and a pick in the menu keeps them.
pub const MENU_PAIRS: [&str; 25] = [
    "EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURJPY", "GBPJPY", "EURGBP", "XAUUSD",
    "XAGUSD", "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META",
    "SPY", "QQQ",
];
/// Minimum confidence choices, in percent.
pub const MIN_CONFIDENCE_CHOICES: [u32; 10] = [35, 40, 45, 50, 55, 60, 65, 70, 75, 80];
/// Cooldown choices, in minutes.
pub const COOLDOWN_CHOICES: [u32; 7] = [0, 15, 30, 60, 120, 240, 1440];
/// Daily cap choices.
pub const DAILY_CAP_CHOICES: [u32; 7] = [5, 10, 20, 50, 100, 200, 1000];
/// "Still running" update choices, in minutes; 0 is off.
pub const RUNNING_UPDATE_CHOICES: [u32; 5] = [0, 15, 30, 60, 240];

/// The settings embed and the controls that change them.
pub fn settings_view(s: &UserSettings, owner: &User) -> OutgoingMessage {
    use discord::interactions::SETTINGS_PREFIX;
    use twilight_model::channel::message::Component;
    use twilight_model::channel::message::component::{ButtonStyle, SelectMenuType};
    use twilight_util::builder::message::{
        ActionRowBuilder, ButtonBuilder, SelectMenuBuilder, SelectMenuOptionBuilder,
    };

    let list = |items: Vec<String>, empty: &str| if items.is_empty() { empty.to_string() } else { items.join(", ") };
    let mut embed = EmbedDraft::new("Your Signalpost settings");
    embed.description(
        "Change them with the controls below; each change is saved at once. The pair menu has the 25 most \
         traded pairs: set any others with `/settings pairs:EURUSD, XAUUSD, ...` (or `pairs:all`) or on the \
         dashboard. An empty choice of timeframes or pairs means all of them.",
    );
    embed.field("Notifications", if s.notifications_enabled { "On" } else { "Off" });
    embed.field("Timeframes", list(s.enabled_timeframes.iter().map(|t| t.to_string()).collect(), "All"));
    embed.field("Pairs", list(s.preferred_pairs.iter().map(|p| p.to_string()).collect(), "All"));
    embed.field("Minimum confidence", format!("{}%", round(s.min_confidence * Decimal::ONE_HUNDRED, 1)));
    embed.field("Only ML-enhanced", if s.only_ml_enhanced { "Yes" } else { "No" });
    embed.field("Daily cap", format!("{} signals", s.max_notifications_per_day));
    embed.field("Cooldown per pair", format!("{} min", s.notification_cooldown_minutes));
    embed.field(
        "Running updates",
        match s.running_update_minutes {
            0 => "Off".to_string(),
            minutes => format!("Every {minutes} min"),
        },
    );
    embed.field(
        "Delivery",
        match &s.delivery {
            Delivery::Dm => "Direct message".to_string(),
            Delivery::Channel(id) => format!("<#{id}>"),
        },
    );
    embed.field("Account currency", owner.account_currency.as_str());
    embed.field("Default lots", owner.default_lots.to_string());

    let id = |control: &str| format!("{SETTINGS_PREFIX}{control}");
    let option =
        |label: String, value: String, chosen: bool| SelectMenuOptionBuilder::new(label, value).default(chosen).build();
    let row = |component: Component| -> Component { ActionRowBuilder::new().component(component).build().into() };

    let mut timeframes = SelectMenuBuilder::new(id(controls::TIMEFRAMES), SelectMenuType::Text)
        .placeholder("Timeframes (none chosen: all)")
        .min_values(0)
        .max_values(Timeframe::ALL.len() as u8);
    for tf in Timeframe::ALL {
        timeframes = timeframes.option(option(tf.to_string(), tf.to_string(), s.enabled_timeframes.contains(&tf)));
    }

    let mut pairs = SelectMenuBuilder::new(id(controls::PAIRS), SelectMenuType::Text)
        .placeholder("Pairs (none chosen: all)")
        .min_values(0)
        .max_values(MENU_PAIRS.len() as u8);
    for pair in MENU_PAIRS {
        let chosen = s.preferred_pairs.iter().any(|p| p.as_str() == pair);
        pairs = pairs.option(option(pair.to_string(), pair.to_string(), chosen));
    }

    let current_confidence = round(s.min_confidence * Decimal::ONE_HUNDRED, 1);
    let mut confidence_choices: Vec<Decimal> = MIN_CONFIDENCE_CHOICES.iter().map(|c| Decimal::from(*c)).collect();
    if !confidence_choices.contains(&current_confidence) {
        confidence_choices.push(current_confidence);
        confidence_choices.sort();
    }
    let mut confidence = SelectMenuBuilder::new(id(controls::MIN_CONFIDENCE), SelectMenuType::Text)
        .placeholder("Minimum confidence")
        .min_values(1)
        .max_values(1);
    for percent in confidence_choices {
        let value = (percent / Decimal::ONE_HUNDRED).normalize().to_string();
        confidence =
            confidence.option(option(format!("Minimum confidence {percent}%"), value, percent == current_confidence));
    }

    let with_current = |choices: &[u32], current: u32| {
        let mut all = choices.to_vec();
        if !all.contains(&current) {
            all.push(current);
            all.sort_unstable();
        }
        all
    };
    let mut limits = SelectMenuBuilder::new(id(controls::LIMITS), SelectMenuType::Text)
        .placeholder("Cooldown per pair, daily cap, running updates (one of each)")
        .min_values(1)
        .max_values(3);
    for minutes in with_current(&COOLDOWN_CHOICES, s.notification_cooldown_minutes) {
        let label = if minutes == 0 { "No cooldown".to_string() } else { format!("Cooldown {minutes} min") };
        limits =
            limits.option(option(label, format!("cooldown:{minutes}"), minutes == s.notification_cooldown_minutes));
    }
    for cap in with_current(&DAILY_CAP_CHOICES, s.max_notifications_per_day) {
        limits = limits.option(option(
            format!("At most {cap} signals a day"),
            format!("cap:{cap}"),
            cap == s.max_notifications_per_day,
        ));
    }
    for minutes in with_current(&RUNNING_UPDATE_CHOICES, s.running_update_minutes) {
        let label = if minutes == 0 {
            "Running updates off".to_string()
        } else {
            format!("Running update every {minutes} min")
        };
        limits = limits.option(option(label, format!("updates:{minutes}"), minutes == s.running_update_minutes));
    }

    let toggle = |control: &str, label: &str, on: bool| -> Component {
        ButtonBuilder::new(if on { ButtonStyle::Success } else { ButtonStyle::Secondary })
            .custom_id(id(control))
            .label(format!("{label}: {}", if on { "on" } else { "off" }))
            .build()
            .into()
    };
    let buttons = ActionRowBuilder::new()
        .component(toggle(controls::NOTIFICATIONS, "Notifications", s.notifications_enabled))
        .component(toggle(controls::ML_ONLY, "Only ML-enhanced", s.only_ml_enhanced))
        .build()
        .into();

    OutgoingMessage {
        embeds: vec![embed.build()],
        components: vec![
            row(timeframes.build().into()),
            row(pairs.build().into()),
            row(confidence.build().into()),
            row(limits.build().into()),
            buttons,
        ],
    }
}

/// The settings after one control's change, or why the change is refused. Range checks are
/// [`UserSettings::validate`]'s; this checks that each value is one the control can carry.
pub fn apply_settings_control(
    current: &UserSettings,
    control: &str,
    values: &[String],
) -> Result<UserSettings, String> {
    let mut new = current.clone();
    let single = || match values {
        [one] => Ok(one.as_str()),
        _ => Err(format!("`{control}` takes exactly one choice, got {}.", values.len())),
    };
    match control {
        controls::TIMEFRAMES => {
            let mut chosen = Vec::new();
            for value in values {
                let tf = Timeframe::parse(value).map_err(|e| format!("{e}."))?;
                if !chosen.contains(&tf) {
                    chosen.push(tf);
                }
            }
            chosen.sort();
            new.enabled_timeframes = chosen;
        }
        controls::PAIRS => {
            let mut chosen = Vec::new();
            for value in values {
                if !MENU_PAIRS.contains(&value.as_str()) {
                    return Err(format!("{:?} is not one of the menu's pairs.", truncate(value, 32)));
                }
                chosen.push(Symbol::normalize(value));
            }
            // Pairs set outside the menu stay: the menu cannot show them, so it cannot have unchosen them.
            let mut pairs: Vec<Symbol> =
                current.preferred_pairs.iter().filter(|p| !MENU_PAIRS.contains(&p.as_str())).cloned().collect();
            for pair in chosen {
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
            new.preferred_pairs = pairs;
        }
        controls::MIN_CONFIDENCE => {
            let value = single()?;
            new.min_confidence = value
                .trim()
                .parse::<Decimal>()
                .map_err(|_| format!("{:?} is not a confidence between 0 and 1.", truncate(value, 32)))?;
        }
        controls::LIMITS => {
            let (mut cooldown, mut cap, mut updates) = (None, None, None);
            for value in values {
                let (kind, number) = value.split_once(':').unwrap_or((value.as_str(), ""));
                let number: u32 =
                    number.parse().map_err(|_| format!("{:?} is not a cooldown or a cap.", truncate(value, 32)))?;
                let slot = match kind {
                    "cooldown" => &mut cooldown,
                    "cap" => &mut cap,
                    "updates" => &mut updates,
                    _ => return Err(format!("{:?} is not a cooldown or a cap.", truncate(value, 32))),
                };
                if slot.replace(number).is_some() {
                    return Err(format!("choose one {kind} at most."));
                }
            }
            if cooldown.is_none() && cap.is_none() && updates.is_none() {
                return Err("choose a cooldown, a daily cap or a running-update period.".into());
            }
            new.running_update_minutes = updates.unwrap_or(current.running_update_minutes);
            new.notification_cooldown_minutes = cooldown.unwrap_or(current.notification_cooldown_minutes);
            new.max_notifications_per_day = cap.unwrap_or(current.max_notifications_per_day);
        }
        controls::NOTIFICATIONS | controls::ML_ONLY if !values.is_empty() => {
            return Err(format!("`{control}` is a button and takes no values."));
        }
        controls::NOTIFICATIONS => new.notifications_enabled = !current.notifications_enabled,
        controls::ML_ONLY => new.only_ml_enhanced = !current.only_ml_enhanced,
        other => return Err(format!("Signalpost has no settings control {:?}.", truncate(other, 32))),
    }
    Ok(new)
}

/// `EURUSD, xau/usd BTCUSDT` as instruments Signalpost knows; `all` (or nothing) is every pair.
pub fn parse_pair_list(text: &str) -> Result<Vec<Symbol>, String> {
    let words: Vec<&str> = text.split([',', ' ', ';']).map(str::trim).filter(|w| !w.is_empty()).collect();
    if words.is_empty() || (words.len() == 1 && words[0].eq_ignore_ascii_case("all")) {
        return Ok(Vec::new());
    }
    if words.len() > 100 {
        return Err("at most 100 pairs.".into());
    }
    let mut pairs = Vec::new();
    for word in words {
        let instrument = InstrumentRegistry::global().get(word).map_err(|e| format!("{e}."))?;
        if !pairs.contains(&instrument.symbol) {
            pairs.push(instrument.symbol.clone());
        }
    }
    Ok(pairs)
}

/// A store or bus failure becomes a short apology; the details go to the log, not to Discord.
fn answer_or_apologise(command: &str, answer: Answer) -> InteractionResponse {
    answer.unwrap_or_else(|error| {
        tracing::error!(error = format!("{error:#}"), command, "a slash command failed");
        ephemeral_message("Signalpost could not answer that just now; nothing was changed. Please try again.")
    })
}

/// An embed built within Discord's limits: long text is cut, and fields that would not fit are dropped and
/// counted in the footer.
struct EmbedDraft {
    title: String,
    description: Option<String>,
    fields: Vec<(String, String)>,
    footer: Option<String>,
    dropped: usize,
}

impl EmbedDraft {
    fn new(title: &str) -> EmbedDraft {
        EmbedDraft {
            title: truncate(title, TITLE_MAX),
            description: None,
            fields: Vec::new(),
            footer: None,
            dropped: 0,
        }
    }

    fn description(&mut self, text: &str) {
        self.description = Some(truncate(text, DESCRIPTION_MAX));
    }

    fn footer(&mut self, text: &str) {
        self.footer = Some(truncate(text, 200));
    }

    fn field(&mut self, name: &str, value: impl AsRef<str>) {
        let value = value.as_ref();
        let field =
            (truncate(name, FIELD_NAME_MAX), truncate(if value.is_empty() { NONE } else { value }, FIELD_VALUE_MAX));
        // Room is kept for the footer that reports dropped fields.
        let room = EMBED_TOTAL_MAX - 300;
        if self.fields.len() >= EMBED_FIELDS_MAX || self.size() + chars(&field.0) + chars(&field.1) > room {
            self.dropped += 1;
        } else {
            self.fields.push(field);
        }
    }

    fn size(&self) -> usize {
        chars(&self.title)
            + self.description.as_deref().map_or(0, chars)
            + self.footer.as_deref().map_or(0, chars)
            + self.fields.iter().map(|(n, v)| chars(n) + chars(v)).sum::<usize>()
    }

    fn build(self) -> Embed {
        let mut builder = EmbedBuilder::new().title(self.title).color(discord::render::GREY);
        if let Some(description) = self.description {
            builder = builder.description(description);
        }
        for (name, value) in self.fields {
            builder = builder.field(EmbedFieldBuilder::new(name, value));
        }
        let footer = match (self.footer, self.dropped) {
            (footer, 0) => footer,
            (Some(footer), n) => Some(format!("{footer} · {n} more not shown")),
            (None, n) => Some(format!("{n} more not shown; see the dashboard")),
        };
        if let Some(footer) = footer {
            builder = builder.footer(EmbedFooterBuilder::new(footer));
        }
        builder.build()
    }

    fn answer(self) -> InteractionResponse {
        ephemeral_embeds(&OutgoingMessage { embeds: vec![self.build()], components: Vec::new() })
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn truncate(text: &str, max: usize) -> String {
    if chars(text) <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).chain(std::iter::once('…')).collect()
    }
}

fn trade_heading(trade: &Trade) -> String {
    format!("#{} {} {} {} lots", trade.id, trade.symbol, trade.side.as_str().to_uppercase(), trade.lots)
}

/// A price to the decimals its market quotes in, never hiding digits it has.
fn show_price(instrument: Option<&Instrument>, price: Price) -> String {
    let places = instrument.map_or(0, |i| i.price_precision).max(price.value().scale()) as usize;
    format!("{:.places$}", price.value())
}

/// Pips where the instrument has them, price change and percent where it does not.
fn movement(outcome: &pnl::Outcome) -> String {
    match outcome.pips {
        Some(pips) => format!("{} pips", signed(round(pips, 1))),
        None => format!("{} ({}%)", signed(outcome.price_change), signed(outcome.percent)),
    }
}

fn round(value: Decimal, places: u32) -> Decimal {
    value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero).normalize()
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn close_reason_words(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::TpHit => "Take profit hit",
        CloseReason::SlHit => "Stop loss hit",
        CloseReason::ManualClose => "Closed by hand",
        CloseReason::Timeout => "Timed out",
    }
}

fn result_word(result: TradeResult) -> &'static str {
    match result {
        TradeResult::Win => "WIN",
        TradeResult::Loss => "LOSS",
        TradeResult::Breakeven => "BREAKEVEN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_differ() {
        let a = new_link_code().unwrap();
        let b = new_link_code().unwrap();
        assert_eq!(a.len(), LINK_CODE_LENGTH);
        assert!(a.bytes().all(|c| LINK_CODE_ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
        for ambiguous in ['0', 'O', '1', 'I', 'L'] {
            assert!(!LINK_CODE_ALPHABET.contains(&(ambiguous as u8)));
        }
    }

    #[test]
    fn typed_codes_hash_alike_whatever_their_case_and_spacing() {
        assert_eq!(hash_link_code("ABCD2345"), hash_link_code(" abcd-2345 "));
        assert_ne!(hash_link_code("ABCD2345"), hash_link_code("ABCD2346"));
        assert_eq!(hash_link_code("ABCD2345").len(), 64);
    }

    #[test]
    fn embeds_stay_inside_discords_limits() {
        let mut embed = EmbedDraft::new(&"t".repeat(300));
        for i in 0..40 {
            embed.field(&format!("field {i}"), "v".repeat(2000));
        }
        let built = embed.build();
        assert!(built.title.as_ref().unwrap().chars().count() <= TITLE_MAX);
        assert!(built.fields.len() <= EMBED_FIELDS_MAX);
        assert!(built.fields.iter().all(|f| f.value.chars().count() <= FIELD_VALUE_MAX));
        let total: usize = built.title.iter().map(|t| chars(t)).sum::<usize>()
            + built.fields.iter().map(|f| chars(&f.name) + chars(&f.value)).sum::<usize>()
            + built.footer.as_ref().map_or(0, |f| chars(&f.text));
        assert!(total <= EMBED_TOTAL_MAX, "{total}");
        assert!(built.footer.unwrap().text.contains("more not shown"));
    }

    #[test]
    fn numbers_read_as_traders_write_them() {
        assert_eq!(money(Decimal::new(54000, 2), "USD"), "+$540.00");
        assert_eq!(money(Decimal::new(-1230, 2), "EUR"), "-12.30 EUR");
        assert_eq!(duration(7500), "2h 5m");
        assert_eq!(duration(45), "45s");
    }
}
