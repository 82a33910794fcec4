//! Candles (OHLCV over one timeframe) and ticks (a bid/ask update).

use crate::{Price, Symbol, Timeframe};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One bar. `time` is the bar's open time; it closes at `time + timeframe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub time: DateTime<Utc>,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandleError {
    #[error("high {high} is below open, close or low")]
    HighTooLow { high: Decimal },
    #[error("low {low} is above open, close or high")]
    LowTooHigh { low: Decimal },
    #[error("prices must be positive")]
    NotPositive,
    #[error("volume must not be negative")]
    NegativeVolume,
}

impl Candle {
    /// Checks the OHLC invariants every consumer relies on.
    pub fn validate(&self) -> Result<(), CandleError> {
        if self.open <= Decimal::ZERO || self.low <= Decimal::ZERO {
            return Err(CandleError::NotPositive);
        }
        if self.high < self.open.max(self.close).max(self.low) {
            return Err(CandleError::HighTooLow { high: self.high });
        }
        if self.low > self.open.min(self.close) {
            return Err(CandleError::LowTooHigh { low: self.low });
        }
        if self.volume < Decimal::ZERO {
            return Err(CandleError::NegativeVolume);
        }
        Ok(())
    }

    pub fn is_bullish(&self) -> bool {
        self.close >= self.open
    }

    pub fn close_time(&self, timeframe: Timeframe) -> DateTime<Utc> {
        self.time + timeframe.duration()
    }
}

/// The range of the candle a synthetic tick was derived from. The position monitor uses it to apply the
/// conservative rule: when a candle touched both a stop loss and a take profit, the stop loss counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandleRange {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
}

/// A price update. Feeds with a single last price set bid and ask to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: Symbol,
    pub time: DateTime<Utc>,
    pub bid: Price,
    pub ask: Price,
    /// Set on ticks a replay invented from a candle's OHLC rather than read from real tick data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_from: Option<CandleRange>,
}

impl Tick {
    pub fn mid(&self) -> Decimal {
        (self.bid.value() + self.ask.value()) / Decimal::TWO
    }

    /// The price a position on `side` closes at: longs sell at the bid, shorts buy back at the ask.
    pub fn exit_price(&self, side: crate::Side) -> Price {
        match side {
            crate::Side::Long => self.bid,
            crate::Side::Short => self.ask,
        }
    }

    /// The price a position on `side` opens at: longs buy at the ask, shorts sell at the bid.
    pub fn entry_price(&self, side: crate::Side) -> Price {
        self.exit_price(side.opposite())
    }
}
