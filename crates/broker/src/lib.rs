//! Brokers behind one [`Broker`] trait: the [`PaperBroker`] that fills against the market feed with a
//! spread and slippage, the [`AlpacaBroker`], a small reqwest client for Alpaca's bracket orders, and the
//! [`BinanceBroker`] for Binance spot and USDⓈ-M futures through the official `binance-sdk`. Every order
//! carries a [`ClientOrderId`], so placing it twice (a retry after a timeout, a second process) returns the
//! first order instead of opening a second position.
//!
//! Errors say what the caller may do next: [`BrokerError::Retryable`] (network, 5xx, 429) may be tried
//! again with the same client order id; [`BrokerError::Rejected`] (the broker's rules, unknown symbol,
//! insufficient funds) will fail the same way again.

mod alpaca;
mod binance;
mod order;
mod paper;
mod quotes;

pub use alpaca::{AlpacaBroker, AlpacaConfig, AlpacaConnector, AlpacaCredentials};
pub use binance::{BinanceBroker, BinanceConfig, BinanceCredentials, BinanceMarket};
pub use order::{
    ClientOrderId, CloseAck, InvalidClientOrderId, OrderAck, OrderEntry, OrderRef, OrderState, OrderStatus, PlaceOrder,
};
pub use paper::{PaperBroker, PaperConfig};
pub use quotes::{InMemoryQuotes, Quote, QuoteSource};

use async_trait::async_trait;
use domain::Price;
use rust_decimal::Decimal;
use std::time::Duration;

/// What went wrong with a broker call, split by what the caller may do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// A transient failure: the request may or may not have reached the broker, so retry with the same
    /// client order id and the broker's idempotency keeps it to one order.
    #[error("broker temporarily unavailable: {reason}")]
    Retryable {
        reason: String,
        /// How long the broker asked us to wait (a 429's reset time), when it said.
        retry_after: Option<Duration>,
    },
    /// The broker refused the request under its rules; retrying will not help.
    #[error("broker rejected the order ({code}): {reason}")]
    Rejected { code: String, reason: String },
    /// No order with this id exists at the broker.
    #[error("unknown order {0}")]
    UnknownOrder(String),
}

impl BrokerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, BrokerError::Retryable { .. })
    }

    pub(crate) fn rejected(code: impl Into<String>, reason: impl Into<String>) -> BrokerError {
        BrokerError::Rejected { code: code.into(), reason: reason.into() }
    }

    pub(crate) fn retryable(reason: impl Into<String>) -> BrokerError {
        BrokerError::Retryable { reason: reason.into(), retry_after: None }
    }
}

/// One follower's account at one broker.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Places an order with its bracket. Placing the same client order id again returns the first order
    /// (or `Rejected` if the second request describes a different order), never a second one.
    async fn place(&self, order: &PlaceOrder) -> Result<OrderAck, BrokerError>;

    /// Moves the stop loss of a filled or pending order.
    async fn modify_stop(&self, order: &OrderRef, stop_loss: Price) -> Result<OrderState, BrokerError>;

    /// Closes `fraction` (0 < f ≤ 1) of the filled position the order opened.
    async fn close(&self, order: &OrderRef, fraction: Decimal) -> Result<CloseAck, BrokerError>;

    /// Cancels an order that has not filled.
    async fn cancel(&self, order: &OrderRef) -> Result<OrderState, BrokerError>;

    /// The order as the broker sees it now, or None if it never received it.
    async fn order(&self, client_order_id: &ClientOrderId) -> Result<Option<OrderState>, BrokerError>;
}

/// Checks the fraction argument of [`Broker::close`] the same way for every broker.
pub(crate) fn check_fraction(fraction: Decimal) -> Result<(), BrokerError> {
    if fraction <= Decimal::ZERO || fraction > Decimal::ONE {
        return Err(BrokerError::rejected(
            "invalid_fraction",
            format!("a close fraction is in (0, 1], got {fraction}"),
        ));
    }
    Ok(())
}
