//! `Price` and `Lots`: amounts parsed and checked once, at the edge, so the rest of the code can trust them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Prices carry at most this many decimal places; the trigger book relies on it to compare them as integers.
pub const MAX_PRICE_SCALE: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("a price must be greater than zero, got {0}")]
    NotPositive(Decimal),
    #[error("a price has at most {MAX_PRICE_SCALE} decimal places, got {0}")]
    TooPrecise(Decimal),
    #[error("a price must be below 10,000,000,000, got {0}")]
    TooLarge(Decimal),
    #[error("lots must be between 0.01 and 100, got {0}")]
    LotsOutOfRange(Decimal),
    #[error("lots are counted in steps of 0.01, got {0}")]
    LotsStep(Decimal),
    #[error("{0:?} is not a side: expected long/buy or short/sell")]
    BadSide(String),
}

fn parse_decimal(text: &str) -> Result<Decimal, PriceError> {
    let cleaned = text.trim().replace([',', '_'], "");
    Decimal::from_str(&cleaned)
        .or_else(|_| Decimal::from_scientific(&cleaned))
        .map_err(|_| PriceError::NotANumber(text.trim().to_string()))
}

/// A positive market price with at most eight decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Price(Decimal);

impl Price {
    pub fn new(value: Decimal) -> Result<Price, PriceError> {
        if value <= Decimal::ZERO {
            return Err(PriceError::NotPositive(value));
        }
        if value >= Decimal::from(10_000_000_000i64) {
            return Err(PriceError::TooLarge(value));
        }
        let normalized = value.normalize();
        if normalized.scale() > MAX_PRICE_SCALE {
            return Err(PriceError::TooPrecise(value));
        }
        Ok(Price(normalized))
    }

    pub fn parse(text: &str) -> Result<Price, PriceError> {
        Price::new(parse_decimal(text)?)
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Price {
    type Error = PriceError;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Price::new(value)
    }
}

impl From<Price> for Decimal {
    fn from(p: Price) -> Decimal {
        p.0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A position size between 0.01 and 100 lots, in steps of 0.01. For crypto and stocks a lot is one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Lots(Decimal);

impl Lots {
    pub const MIN: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
    pub const MAX: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

    pub fn new_checked(value: Decimal) -> Result<Lots, PriceError> {
        if value < Self::MIN || value > Self::MAX {
            return Err(PriceError::LotsOutOfRange(value));
        }
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(PriceError::LotsStep(value));
        }
        Ok(Lots(normalized))
    }

    pub fn parse(text: &str) -> Result<Lots, PriceError> {
        Lots::new_checked(parse_decimal(text)?)
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Lots {
    type Error = PriceError;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Lots::new_checked(value)
    }
}

impl From<Lots> for Decimal {
    fn from(l: Lots) -> Decimal {
        l.0
    }
}

impl std::fmt::Display for Lots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn price_parses_and_rejects() {
        assert_eq!(Price::parse(" 1.08540 ").unwrap().value(), dec!(1.0854));
        assert_eq!(Price::parse("2,345.5").unwrap().value(), dec!(2345.5));
        assert!(matches!(Price::parse("abc"), Err(PriceError::NotANumber(_))));
        assert!(matches!(Price::parse("0"), Err(PriceError::NotPositive(_))));
        assert!(matches!(Price::parse("-1.2"), Err(PriceError::NotPositive(_))));
        assert!(matches!(Price::parse("1.123456789"), Err(PriceError::TooPrecise(_))));
    }

    #[test]
    fn lots_bounds_and_step() {
        assert!(Lots::parse("0.01").is_ok());
        assert!(Lots::parse("100").is_ok());
        assert!(matches!(Lots::parse("0.009"), Err(PriceError::LotsOutOfRange(_))));
        assert!(matches!(Lots::parse("100.01"), Err(PriceError::LotsOutOfRange(_))));
        assert!(matches!(Lots::parse("0.015"), Err(PriceError::LotsStep(_))));
        assert!(matches!(Lots::parse("lots"), Err(PriceError::NotANumber(_))));
    }
}
