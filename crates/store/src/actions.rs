//! What a person does to their signals and trades, written once for every front end: Discord's buttons and
//! slash commands and the dashboard's forms call these, so a trade opened from the dashboard is the same trade
//! Discord would have made (same ownership check, same opening time, same validation, same idempotence).
//!
//! Nothing here publishes events: the caller gets the trade back and announces it on its bus
//! (`Event::TradeOpened` / `Event::TradeClosed`), keeping this crate free of the bus.

use crate::{Notification, OpenOutcome, Store, StoreError, StoredSignal, User};
use chrono::{DateTime, Utc};
use domain::{
    CloseReason, Closing, Entry, Instrument, InstrumentRegistry, Lots, NewTrade, NotificationId, Outcome, Price,
    RateBook, Trade, TradeError, TradeId, TradeRequest, TradeStatus, UserId, pnl,
};

/// Why an action did nothing. Every variant's text may be shown to the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("there is no signal #{0}")]
    NoSuchNotification(NotificationId),
    #[error("that signal was sent to someone else; you can only act on your own")]
    NotYourNotification,
    #[error("the signal behind notification #{0} is no longer stored")]
    SignalMissing(NotificationId),
    #[error("nothing was opened: {0}")]
    Invalid(#[from] TradeError),
    #[error("there is no trade #{0}")]
    NoSuchTrade(TradeId),
    #[error("trade #{id} was not closed: {error}")]
    BadExitPrice { id: TradeId, error: TradeError },
    #[error("trade #{0} is not yours; you can only close your own trades")]
    NotYourTrade(TradeId),
    #[error("trade #{id} is already {status}; nothing was changed")]
    NotOpen { id: TradeId, status: TradeStatus },
    #[error("trade #{id} is on {symbol}, which Signalpost does not price")]
    Unpriced { id: TradeId, symbol: String },
    #[error("no price for {symbol} has been seen yet, so trade #{id} cannot be closed at market; nothing was changed")]
    NoPrice { id: TradeId, symbol: String },
    #[error(
        "trade #{0} was closed by something else a moment ago (its stop loss or take profit, or another close); \
         nothing more was changed"
    )]
    ClosedMeanwhile(TradeId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Open Trade form's fields as typed (a Discord modal, a dashboard form).
#[derive(Debug, Clone, Default)]
pub struct TradeForm<'a> {
    pub entry: &'a str,
    pub lots: &'a str,
    pub stop_loss: &'a str,
    pub take_profit: &'a str,
    pub notes: &'a str,
}

/// What the Open Trade form starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeDefaults {
    /// `None` for a market signal before any price was seen: the person types it.
    pub entry: Option<Price>,
    pub lots: Lots,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
}

/// Notes longer than this are cut: they are a reminder, not a journal.
pub const MAX_NOTES_CHARS: usize = 1000;

/// The notification and its signal, when the notification exists and belongs to `owner`.
pub async fn own_notification(
    store: &dyn Store,
    owner: UserId,
    id: NotificationId,
) -> Result<(Notification, StoredSignal), ActionError> {
    let notification = match store.get_notification(id).await? {
        Some(n) if n.user_id == owner => n,
        Some(_) => return Err(ActionError::NotYourNotification),
        None => return Err(ActionError::NoSuchNotification(id)),
    };
    let signal = store.get_signal(notification.signal_id).await?.ok_or(ActionError::SignalMissing(id))?;
    Ok((notification, signal))
}

/// The form's starting values: the signal's entry (a zone's middle; for a market signal the latest price
/// on the side the trade opens at), the owner's default lots, the signal's stop loss and first take profit.
pub async fn trade_defaults(
    store: &dyn Store,
    owner: &User,
    signal: &StoredSignal,
) -> Result<TradeDefaults, ActionError> {
    let s = &signal.signal;
    let entry = match s.entry {
        Entry::Price { price } => Some(price),
        Entry::Zone { low, high } => Price::new((low.value() + high.value()) / rust_decimal::Decimal::TWO).ok(),
        Entry::Market => store.last_price(&s.symbol).await?.map(|tick| tick.entry_price(s.side)),
    };
    Ok(TradeDefaults {
        entry,
        lots: owner.default_lots,
        stop_loss: s.stop_loss,
        take_profit: s.take_profits.first().copied(),
    })
}

/// Opens the trade an Open Trade form describes for `owner`'s notification `id`, and acknowledges the
/// notification. The trade is stamped with the latest price's time when there is one (a replayed market runs
/// on its own clock), else `now`. A second submit for the same notification returns the first trade with
/// `created: false`. Refused, with nothing stored, when the notification is someone else's or a value is bad.
pub async fn open_from_notification(
    store: &dyn Store,
    owner: UserId,
    id: NotificationId,
    form: &TradeForm<'_>,
    now: DateTime<Utc>,
) -> Result<OpenOutcome, ActionError> {
    let (notification, signal) = own_notification(store, owner, id).await?;
    let signal = signal.signal;
    let opened_at = match store.last_price(&signal.symbol).await? {
        Some(tick) => tick.time,
        None => now,
    };
    let request = TradeRequest {
        symbol: signal.symbol.as_str(),
        side: signal.side.as_str(),
        entry: form.entry,
        lots: form.lots,
        stop_loss: Some(form.stop_loss),
        take_profit: Some(form.take_profit),
    };
    let mut new = NewTrade::parse(owner, &request, opened_at)?;
    new.notes = Some(form.notes.trim()).filter(|n| !n.is_empty()).map(|n| n.chars().take(MAX_NOTES_CHARS).collect());
    new.signal_id = Some(notification.signal_id);
    new.notification_id = Some(id);
    let opened = store.open_trade(&new).await?;
    store.acknowledge_notification(id).await?;
    Ok(opened)
}

/// Ignore: acknowledges `owner`'s notification.
pub async fn ignore_notification(store: &dyn Store, owner: UserId, id: NotificationId) -> Result<(), ActionError> {
    own_notification(store, owner, id).await?;
    store.acknowledge_notification(id).await?;
    Ok(())
}

/// The latest prices that convert the instrument's quote currency into the account currency.
pub async fn rates(store: &dyn Store, instrument: &Instrument, account: &str) -> Result<RateBook, StoreError> {
    let mut rates = RateBook::default();
    for pair in [format!("{}{account}", instrument.quote), format!("{account}{}", instrument.quote)] {
        if let Ok(i) = InstrumentRegistry::global().get(&pair)
            && let Some(tick) = store.last_price(&i.symbol).await?
        {
            rates.set(i.symbol.as_str(), tick.mid());
        }
    }
    Ok(rates)
}

/// An open trade's P&L at the latest price, with that price and its time; `None` without a price or for an
/// instrument Signalpost does not know.
pub async fn live_outcome(
    store: &dyn Store,
    trade: &Trade,
    account: &str,
) -> Result<Option<(Price, DateTime<Utc>, Outcome)>, StoreError> {
    let Ok(instrument) = InstrumentRegistry::global().get(trade.symbol.as_str()) else { return Ok(None) };
    let Some(tick) = store.last_price(&trade.symbol).await? else { return Ok(None) };
    let now = tick.exit_price(trade.side);
    let rates = rates(store, instrument, account).await?;
    Ok(Some((now, tick.time, pnl::outcome(instrument, trade.side, trade.entry, now, trade.lots, &rates, account))))
}

/// Closes `owner`'s open trade by hand at the latest price (longs at the bid, shorts at the ask), stamped
/// with the market's time as the monitor stamps its closes. Refused, with nothing changed, for someone
/// else's trade, a trade no longer open, or before any price was seen.
pub async fn close_at_market(store: &dyn Store, owner: &User, id: TradeId) -> Result<Trade, ActionError> {
    let trade = match store.get_trade(id).await? {
        Some(trade) if trade.user_id == owner.id => trade,
        Some(_) => return Err(ActionError::NotYourTrade(id)),
        None => return Err(ActionError::NoSuchTrade(id)),
    };
    if trade.status != TradeStatus::Open {
        return Err(ActionError::NotOpen { id, status: trade.status });
    }
    let symbol = trade.symbol.as_str().to_string();
    let Ok(instrument) = InstrumentRegistry::global().get(&symbol) else {
        return Err(ActionError::Unpriced { id, symbol });
    };
    let Some(tick) = store.last_price(&trade.symbol).await? else {
        return Err(ActionError::NoPrice { id, symbol });
    };
    let exit = tick.exit_price(trade.side);
    instrument.check_precision(exit).map_err(|error| ActionError::BadExitPrice { id, error })?;
    let currency = owner.account_currency.as_str();
    let rates = rates(store, instrument, currency).await?;
    let outcome = pnl::outcome(instrument, trade.side, trade.entry, exit, trade.lots, &rates, currency);
    let at = tick.time.max(trade.opened_at);
    let closing = Closing::new(exit, CloseReason::ManualClose, at, &outcome);
    store.close_trade(id, &closing).await?.ok_or(ActionError::ClosedMeanwhile(id))
}
