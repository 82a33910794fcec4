//! Followers and their copy orders (issue 6): the rows `follower_repo.rs` reads and writes.
//!
//! A follower is one user following one provider channel through one broker, with the risk settings and
//! account size the copier sizes orders with. Every copied signal gets one copy order per follower, keyed
//! by UNIQUE (follower, signal) and carrying a client order id chosen before the broker is called, so a
//! crashed or repeated run re-drives the same order instead of placing a second one. A copy order starts
//! `pending` and finishes exactly once: placed (with the trade it opened), refused by a risk gate, rejected
//! by the broker, or failed.

use crate::vault::SealedCredentials;
use chrono::{DateTime, Utc};
use domain::{SignalId, TradeId, UserId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FollowerId(pub i64);

impl std::fmt::Display for FollowerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CopyOrderId(pub i64);

impl std::fmt::Display for CopyOrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a follower's orders are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    Paper,
    BinanceSpot,
    BinanceFutures,
    Alpaca,
}

impl BrokerKind {
    pub const ALL: [BrokerKind; 4] =
        [BrokerKind::Paper, BrokerKind::BinanceSpot, BrokerKind::BinanceFutures, BrokerKind::Alpaca];

    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Paper => "paper",
            BrokerKind::BinanceSpot => "binance_spot",
            BrokerKind::BinanceFutures => "binance_futures",
            BrokerKind::Alpaca => "alpaca",
        }
    }

    pub fn parse(text: &str) -> Option<BrokerKind> {
        BrokerKind::ALL.into_iter().find(|b| b.as_str() == text)
    }

    /// Every real broker needs an API key pair; the paper broker simulates fills and needs none.
    pub fn needs_credentials(self) -> bool {
        self != BrokerKind::Paper
    }
}

impl std::fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A follower to create, or to update when the user already follows the channel.
#[derive(Debug, Clone)]
pub struct NewFollower<'a> {
    pub user_id: UserId,
    pub provider_channel: &'a str,
    pub broker: BrokerKind,
    /// None keeps the stored credentials when the row exists with the same broker (the user never sees them
    /// again, so re-saving settings must not need them); a broker that needs credentials and has none is
    /// refused ([`StoreError::Invalid`](crate::StoreError::Invalid)). The paper broker stores none.
    pub sealed_credentials: Option<SealedCredentials>,
    pub risk_settings: &'a risk::FollowerRiskSettings,
    pub balance: Decimal,
    pub currency: &'a str,
    pub at: DateTime<Utc>,
}

/// A stored follower.
#[derive(Clone, PartialEq)]
pub struct Follower {
    pub id: FollowerId,
    pub user_id: UserId,
    pub provider_channel: String,
    pub broker: BrokerKind,
    pub sealed_credentials: Option<SealedCredentials>,
    pub risk_settings: risk::FollowerRiskSettings,
    /// The account size the sizing uses, in `currency`.
    pub balance: Decimal,
    pub currency: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sealed bytes reveal nothing, but even their length is none of a log's business.
        f.debug_struct("Follower")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("provider_channel", &self.provider_channel)
            .field("broker", &self.broker)
            .field("sealed_credentials", &self.sealed_credentials.as_ref().map(|_| "[sealed]"))
            .field("risk_settings", &self.risk_settings)
            .field("balance", &self.balance)
            .field("currency", &self.currency)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What the risk gates need to know about a follower's account, computed from its copy orders and trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowerDayStats {
    /// Placed copies whose trade is still open.
    pub open_positions: u32,
    /// Profit of the follower's copied trades (and partial closes of them) closed at or after the day start.
    pub realised_pnl_today: Decimal,
    /// The same over all time.
    pub realised_pnl_total: Decimal,
    /// Copies placed (status `placed`) created at or after the day start.
    pub signals_taken_today: u32,
}

/// Where a copy order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyStatus {
    /// Written before the broker is called; a crash leaves it here, to be re-driven.
    Pending,
    /// The broker accepted the order and the trade is recorded.
    Placed,
    /// A risk gate refused it; no order was sent.
    Refused,
    /// The broker refused the order.
    Rejected,
    /// Something else went wrong (no credentials, a broker outage that outlasted the retries…).
    Failed,
}

impl CopyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyStatus::Pending => "pending",
            CopyStatus::Placed => "placed",
            CopyStatus::Refused => "refused",
            CopyStatus::Rejected => "rejected",
            CopyStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<CopyStatus> {
        Some(match text {
            "pending" => CopyStatus::Pending,
            "placed" => CopyStatus::Placed,
            "refused" => CopyStatus::Refused,
            "rejected" => CopyStatus::Rejected,
            "failed" => CopyStatus::Failed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for CopyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One follower's copy of one signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyOrder {
    pub id: CopyOrderId,
    pub follower_id: FollowerId,
    pub user_id: UserId,
    pub signal_id: SignalId,
    /// Sent to the broker with the order, so a re-driven copy is recognised there instead of doubled.
    pub client_order_id: String,
    pub status: CopyStatus,
    /// The risk gate that refused it.
    pub gate: Option<String>,
    /// Why it was not placed, in words a user can read.
    pub reason: Option<String>,
    pub broker_order_id: Option<String>,
    pub trade_id: Option<TradeId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A copy the broker accepted, to record with its trade: see [`crate::Store::finish_copies_placed`].
#[derive(Debug, Clone)]
pub struct PlacedCopy {
    pub id: CopyOrderId,
    pub broker_order_id: String,
    pub trade: domain::NewTrade,
    pub at: DateTime<Utc>,
}

/// A copy order to begin.
#[derive(Debug, Clone, Copy)]
pub struct NewCopy<'a> {
    pub follower_id: FollowerId,
    pub user_id: UserId,
    pub client_order_id: &'a str,
}
