//! The trading core of Signalpost: instruments and their conventions, prices and lot sizes parsed once at
//! the edge, candles and ticks, signals, trades with their state machine, P&L in pips and money, and the
//! trigger book the position monitor uses to find which stop losses and take profits a tick crosses.
//!
//! Nothing here does I/O or knows about a runtime, so every rule can be tested and benchmarked in isolation.

pub mod book;
pub mod candle;
pub mod hours;
pub mod ids;
pub mod instrument;
pub mod pnl;
pub mod price;
pub mod settings;
pub mod signal;
pub mod stats;
pub mod time;
pub mod timeframe;
pub mod trade;

pub use book::{FixedPrice, Trigger, TriggerBook, TriggerKind, WatchedTrade, resolve_fill};
pub use candle::{Candle, CandleError, CandleRange, Tick};
pub use ids::{NotificationId, SignalId, TradeId, UserId};
pub use instrument::{AssetClass, Instrument, InstrumentRegistry, Symbol, UnknownInstrument};
pub use pnl::{Outcome, PnlError, RateBook};
pub use price::{Lots, Price, PriceError};
pub use settings::{Declined, Delivery, SettingsError, UserSettings};
pub use signal::{Entry, Signal, SignalError, SignalSource};
pub use time::{Clock, ManualClock, SystemClock};
pub use timeframe::{Timeframe, UnknownTimeframe};
pub use trade::{
    CloseReason, Closing, NewTrade, Trade, TradeError, TradeRequest, TradeResult, TradeStatus, TradeUpdateKind,
};

/// Which way a position makes money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// +1 for a long, −1 for a short: profit is (exit − entry) × direction.
    pub fn direction(self) -> rust_decimal::Decimal {
        match self {
            Side::Long => rust_decimal::Decimal::ONE,
            Side::Short => rust_decimal::Decimal::NEGATIVE_ONE,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }

    /// Accepts the words traders use: long/buy, short/sell, any case.
    pub fn parse(text: &str) -> Result<Side, PriceError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "long" | "buy" => Ok(Side::Long),
            "short" | "sell" => Ok(Side::Short),
            _ => Err(PriceError::BadSide(text.to_string())),
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
