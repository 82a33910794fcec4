//! How values are written to columns and read back, where the two backends differ or the schema uses a
//! text encoding.
//!
//! [`Dec`] carries a `Decimal` to and from both databases: PostgreSQL stores it as NUMERIC through sqlx's
//! own encoding; SQLite has no exact decimal type and sqlx's SQLite driver does not support `Decimal`, so it
//! is stored as its canonical text. With that one wrapper the SQL and the row-reading code are the same for
//! both backends.

use crate::StoreError;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use domain::{Lots, Price, Symbol, Timeframe};
use rust_decimal::Decimal;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Type};
use std::str::FromStr;

/// A decimal column value. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dec(pub Decimal);

impl From<Price> for Dec {
    fn from(p: Price) -> Dec {
        Dec(p.value())
    }
}

impl From<Lots> for Dec {
    fn from(l: Lots) -> Dec {
        Dec(l.value())
    }
}

impl From<Decimal> for Dec {
    fn from(d: Decimal) -> Dec {
        Dec(d)
    }
}

impl Type<Sqlite> for Dec {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        // Only text: a REAL that slipped in has already lost digits and must not be read as exact.
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Dec {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.0.to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Dec {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Decimal::from_str(text.trim()).map(Dec).map_err(|e| format!("{text:?} is not a decimal number: {e}").into())
    }
}

impl Type<Postgres> for Dec {
    fn type_info() -> PgTypeInfo {
        <Decimal as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Decimal as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Dec {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Dec {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <Decimal as Decode<Postgres>>::decode(value).map(Dec)
    }
}

/// PostgreSQL keeps microseconds; SQLite would keep whatever it is given. Truncating every timestamp before
/// it is written makes both backends return the same value for the same input.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

pub(crate) fn to_price(table: &'static str, column: &str, value: Decimal) -> Result<Price, StoreError> {
    Price::new(value).map_err(|e| StoreError::corrupt(table, column, e))
}

pub(crate) fn to_lots(table: &'static str, column: &str, value: Decimal) -> Result<Lots, StoreError> {
    Lots::new_checked(value).map_err(|e| StoreError::corrupt(table, column, e))
}

pub(crate) fn to_u32(table: &'static str, column: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::corrupt(table, column, format!("{value} is out of range")))
}

/// Parses a closed set of words (a status, a side, a role) with `parse`, naming the column on failure.
pub(crate) fn to_enum<T>(
    table: &'static str,
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::corrupt(table, column, format!("unexpected value {text:?}")))
}

pub(crate) fn timeframes_to_text(timeframes: &[Timeframe]) -> String {
    timeframes.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn timeframes_from_text(
    table: &'static str,
    column: &str,
    text: &str,
) -> Result<Vec<Timeframe>, StoreError> {
    split_list(text).map(|t| Timeframe::parse(t).map_err(|e| StoreError::corrupt(table, column, e))).collect()
}

pub(crate) fn symbols_to_text(symbols: &[Symbol]) -> String {
    symbols.iter().map(Symbol::as_str).collect::<Vec<_>>().join(",")
}

pub(crate) fn symbols_from_text(text: &str) -> Vec<Symbol> {
    split_list(text).map(Symbol::normalize).collect()
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Take profits as a JSON array of strings: strings, not numbers, so no JSON reader turns them into floats.
pub(crate) fn prices_to_json(prices: &[Price]) -> String {
    let texts: Vec<String> = prices.iter().map(ToString::to_string).collect();
    serde_json::Value::from(texts).to_string()
}

pub(crate) fn prices_from_json(table: &'static str, column: &str, text: &str) -> Result<Vec<Price>, StoreError> {
    let texts: Vec<String> = serde_json::from_str(text).map_err(|e| StoreError::corrupt(table, column, e))?;
    texts
        .iter()
        .map(|t| {
            let value = Decimal::from_str(t).map_err(|e| StoreError::corrupt(table, column, format!("{t:?}: {e}")))?;
            to_price(table, column, value)
        })
        .collect()
}

/// A user's account currency: three upper-case letters, as ISO 4217 writes them.
pub(crate) fn check_currency(code: &str) -> Result<(), StoreError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(StoreError::invalid(format!("an account currency is a three-letter code such as USD, got {code:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip() {
        let tfs = vec![Timeframe::H1, Timeframe::D1];
        assert_eq!(timeframes_from_text("t", "c", &timeframes_to_text(&tfs)).unwrap(), tfs);
        assert_eq!(timeframes_from_text("t", "c", "").unwrap(), vec![]);
        assert!(timeframes_from_text("t", "c", "1h,2h").is_err());
        let pairs = vec![Symbol::normalize("EURUSD"), Symbol::normalize("XAUUSD")];
        assert_eq!(symbols_from_text(&symbols_to_text(&pairs)), pairs);
        assert!(symbols_from_text("").is_empty());
    }

    #[test]
    fn take_profits_keep_every_digit() {
        let tps = vec![Price::parse("64123.12345678").unwrap(), Price::parse("1.08545").unwrap()];
        let json = prices_to_json(&tps);
        assert_eq!(json, r#"["64123.12345678","1.08545"]"#);
        assert_eq!(prices_from_json("t", "c", &json).unwrap(), tps);
        assert!(prices_from_json("t", "c", "[1.5]").is_err());
        assert!(prices_from_json("t", "c", r#"["-1"]"#).is_err());
    }
}
