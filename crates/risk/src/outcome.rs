//! What the pipeline answers: an approved order that only the pipeline can make, or the gate that refused.

use domain::{Entry, Lots, Price, Side, Symbol};
use rust_decimal::Decimal;
use serde::Serialize;

/// The checks a copied signal passes, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The signal itself: a price to size against, levels on the right sides, the right instrument.
    Signal,
    /// The subscription tier's signals a day.
    TierLimit,
    /// The share of the day's starting balance that may be lost.
    DailyLoss,
    /// The follower's trading hours.
    TradingHours,
    /// The number of positions open at once.
    MaxOpenPositions,
    /// The position size: fixed, % risk or Kelly, within the lot bounds.
    Sizing,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Signal => "signal",
            Gate::TierLimit => "tier_limit",
            Gate::DailyLoss => "daily_loss",
            Gate::TradingHours => "trading_hours",
            Gate::MaxOpenPositions => "max_open_positions",
            Gate::Sizing => "sizing",
        }
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal the follower will not copy, with a sentence they can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    pub gate: Gate,
    pub reason: String,
}

impl Refused {
    pub(crate) fn new(gate: Gate, reason: impl Into<String>) -> Refused {
        Refused { gate, reason: reason.into() }
    }
}

/// Something every gate let through. Only this crate can make one, so holding an `Approved<OrderIntent>`
/// proves the order passed the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approved<T> {
    order: T,
    sizing: SizingReport,
}

impl<T> Approved<T> {
    pub(crate) fn new(order: T, sizing: SizingReport) -> Approved<T> {
        Approved { order, sizing }
    }

    pub fn order(&self) -> &T {
        &self.order
    }

    /// How the size was reached, for the follower's trade notes and the logs.
    pub fn sizing(&self) -> &SizingReport {
        &self.sizing
    }

    pub fn into_inner(self) -> T {
        self.order
    }
}

/// The order to place on the follower's broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderIntent {
    pub symbol: Symbol,
    pub side: Side,
    /// As the signal gave it: market, a price or a zone.
    pub entry: Entry,
    /// The entry price the size was computed from: the market price, the limit price, or the zone edge that
    /// puts the stop loss farthest away.
    pub reference_price: Price,
    pub lots: Lots,
    pub stop_loss: Option<Price>,
    pub take_profits: Vec<Price>,
}

/// Which rule set the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "basis")]
pub enum SizingBasis {
    FixedLots,
    RiskPercent {
        percent: Decimal,
    },
    /// `full_kelly` is the provider's Kelly fraction (0..=1); `percent` the share of the balance risked after
    /// the fraction and the cap.
    Kelly {
        full_kelly: Decimal,
        percent: Decimal,
        capped: bool,
    },
    /// The provider had fewer than `needed` closed trades, so the % risk cap sized the order instead.
    KellyFallback {
        percent: Decimal,
        trades: u32,
        needed: u32,
    },
}

/// The numbers behind an approved size, all in the account currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizingReport {
    pub basis: SizingBasis,
    /// What the rule allowed to be lost at the stop loss; None for a fixed size.
    pub risk_budget: Option<Decimal>,
    /// What the rounded size loses at the stop loss; None without a stop loss or a conversion rate.
    pub risk_amount: Option<Decimal>,
    /// The stop distance in price units; None without a stop loss.
    pub stop_distance: Option<Decimal>,
    /// The size before rounding down to the lot step and capping at the maximum; None for a fixed size.
    pub unrounded_lots: Option<Decimal>,
    /// Whether the maximum lots cut the size.
    pub capped_at_max: bool,
}
