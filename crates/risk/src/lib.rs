//! The risk pipeline a copied provider signal passes for each follower before it reaches their broker.
//! A signal is checked (a price to size at, levels on the right sides), then the gates run in order:
//! subscription-tier signals a day, daily loss limit, trading hours in the follower's time zone, maximum
//! open positions, and position sizing (fixed lots, % of balance at risk, or capped Kelly from the
//! provider's record). The answer is a type: an [`Approved<OrderIntent>`] that only this crate can make, or
//! [`Refused`] naming the [`Gate`] and saying why in a sentence the follower can read.
//!
//! Settings are validated once ([`FollowerRiskSettings::new_checked`]), so the gates never meet a negative
//! percentage or an empty window. Nothing here does I/O or reads the clock: `now` is an input.

mod input;
pub mod money;
mod outcome;
mod pipeline;
mod settings;

pub use input::{AccountSnapshot, ProviderRecord, SignalIntent};
pub use outcome::{Approved, Gate, OrderIntent, Refused, SizingBasis, SizingReport};
pub use pipeline::{RiskOutcome, RiskRequest, evaluate};
pub use settings::{FollowerRiskSettings, HoursDraft, RiskSettingsDraft, RiskSettingsError, Sizing, TradingHours};
