//! The orders every broker takes and the states they report, independent of any one broker's wire format.

use domain::{Entry, Lots, Price, Side, SignalId, Symbol, UserId};
use risk::{Approved, OrderIntent};
use rust_decimal::Decimal;
use serde::Serialize;

/// The id we give an order, so a retried or repeated placement is recognised by the broker.
/// 1 to 48 characters of `[A-Za-z0-9_-]`: within Alpaca's 128 and Binance's 36-character limits once a
/// venue prefix is added, and safe in a URL query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClientOrderId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a client order id: 1 to 48 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidClientOrderId(pub String);

impl ClientOrderId {
    pub const MAX_LEN: usize = 48;

    pub fn new(text: impl Into<String>) -> Result<ClientOrderId, InvalidClientOrderId> {
        let text = text.into();
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid { Ok(ClientOrderId(text)) } else { Err(InvalidClientOrderId(text)) }
    }

    /// The one id of the order copying `signal` for `follower`: the same pair always gives the same id, so
    /// the broker keeps it to one order however often the copier retries.
    pub fn for_signal(signal: SignalId, follower: UserId) -> ClientOrderId {
        ClientOrderId(format!("sp-{signal}-{follower}"))
    }

    /// [`ClientOrderId::for_signal`] as text: the id scheme the intakes hand to `store::BeginCopies`.
    pub fn text_for_signal(signal: SignalId, follower: UserId) -> String {
        Self::for_signal(signal, follower).0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the order enters the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "price")]
pub enum OrderEntry {
    Market,
    Limit(Price),
}

/// An order with its bracket: the stop loss and take profits leave with the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceOrder {
    pub client_order_id: ClientOrderId,
    pub symbol: Symbol,
    pub side: Side,
    /// Lots; for crypto and stocks one lot is one unit, which is what Alpaca's `qty` counts.
    pub qty: Lots,
    pub entry: OrderEntry,
    pub stop_loss: Option<Price>,
    /// Nearest first. Brokers whose brackets take one take profit (Alpaca) use the first.
    pub take_profits: Vec<Price>,
    /// The leverage to set on the symbol before the entry, for brokers with per-symbol leverage (Binance
    /// USD-M futures); None keeps the account's current setting, and brokers without leverage ignore it.
    pub leverage: Option<u32>,
}

impl PlaceOrder {
    /// The order for an intent the risk pipeline approved. A price entry becomes a limit at that price; a
    /// zone becomes a limit at the edge the size was computed from (the worst fill inside the zone), so the
    /// order fills anywhere in the zone and never risks more than the pipeline allowed.
    pub fn from_approved(intent: &Approved<OrderIntent>, client_order_id: ClientOrderId) -> PlaceOrder {
        let intent = intent.order();
        let entry = match intent.entry {
            Entry::Market => OrderEntry::Market,
            Entry::Price { price } => OrderEntry::Limit(price),
            Entry::Zone { .. } => OrderEntry::Limit(intent.reference_price),
        };
        PlaceOrder {
            client_order_id,
            symbol: intent.symbol.clone(),
            side: intent.side,
            qty: intent.lots,
            entry,
            stop_loss: intent.stop_loss,
            take_profits: intent.take_profits.clone(),
            leverage: None,
        }
    }

    /// Whether `state` is this order, for telling an idempotent replay from a reused id.
    pub(crate) fn same_order_as(&self, state: &OrderState) -> bool {
        state.symbol == self.symbol && state.side == self.side && state.qty == self.qty.value()
    }
}

/// What identifies a placed order in later calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OrderRef {
    pub client_order_id: ClientOrderId,
    /// The broker's own id.
    pub broker_order_id: String,
    pub symbol: Symbol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted, not filled (a resting limit, or a market order still on its way).
    Pending,
    PartiallyFilled,
    Filled,
    Cancelled,
    /// The broker refused it after accepting it (Alpaca can do so asynchronously).
    Rejected,
}

/// An order as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderState {
    pub client_order_id: ClientOrderId,
    pub broker_order_id: String,
    pub symbol: Symbol,
    pub side: Side,
    pub entry: OrderEntry,
    /// Ordered quantity, in lots (units for crypto and stocks).
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub avg_fill_price: Option<Price>,
    pub status: OrderStatus,
    pub stop_loss: Option<Price>,
    pub take_profits: Vec<Price>,
}

impl OrderState {
    pub fn order_ref(&self) -> OrderRef {
        OrderRef {
            client_order_id: self.client_order_id.clone(),
            broker_order_id: self.broker_order_id.clone(),
            symbol: self.symbol.clone(),
        }
    }
}

/// The answer to [`crate::Broker::place`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderAck {
    pub state: OrderState,
    /// True when the client order id was already known and this is the first order, not a new one.
    pub duplicate: bool,
}

impl OrderAck {
    pub fn order_ref(&self) -> OrderRef {
        self.state.order_ref()
    }
}

/// The answer to [`crate::Broker::close`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseAck {
    /// The quantity being closed, in lots (units for crypto and stocks).
    pub qty: Decimal,
    /// The fill price when the broker filled the close at once.
    pub price: Option<Price>,
    /// What stays open, when the broker says.
    pub remaining: Option<Decimal>,
}
