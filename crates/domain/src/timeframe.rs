//! Candle timeframes, from one minute to one day.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timeframe {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "1d")]
    D1,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeframe {0:?}: expected one of 1m 5m 15m 30m 1h 4h 1d")]
pub struct UnknownTimeframe(pub String);

impl Timeframe {
    pub const ALL: [Timeframe; 7] =
        [Timeframe::M1, Timeframe::M5, Timeframe::M15, Timeframe::M30, Timeframe::H1, Timeframe::H4, Timeframe::D1];

    pub fn seconds(self) -> i64 {
        match self {
            Timeframe::M1 => 60,
            Timeframe::M5 => 300,
            Timeframe::M15 => 900,
            Timeframe::M30 => 1800,
            Timeframe::H1 => 3600,
            Timeframe::H4 => 14_400,
            Timeframe::D1 => 86_400,
        }
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Timeframe::M1 => "1m",
            Timeframe::M5 => "5m",
            Timeframe::M15 => "15m",
            Timeframe::M30 => "30m",
            Timeframe::H1 => "1h",
            Timeframe::H4 => "4h",
            Timeframe::D1 => "1d",
        }
    }

    /// The next coarser timeframe in the resampling chain 1m → 5m → 15m → 30m → 1h → 4h → 1d.
    pub fn coarser(self) -> Option<Timeframe> {
        let i = Self::ALL.iter().position(|t| *t == self)?;
        Self::ALL.get(i + 1).copied()
    }

    /// The open time of the bucket `t` falls in; buckets are aligned to the Unix epoch (days at 00:00 UTC).
    pub fn bucket_start(self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        let secs = t.timestamp();
        let start = secs - secs.rem_euclid(self.seconds());
        chrono::DateTime::from_timestamp(start, 0).unwrap_or(t)
    }

    /// Accepts our names (`1h`) and the common MetaTrader-style ones (`H1`, `M15`, `D1`).
    pub fn parse(text: &str) -> Result<Timeframe, UnknownTimeframe> {
        let t = text.trim();
        let found = match t.to_ascii_lowercase().as_str() {
            "1m" | "m1" => Timeframe::M1,
            "5m" | "m5" => Timeframe::M5,
            "15m" | "m15" => Timeframe::M15,
            "30m" | "m30" => Timeframe::M30,
            "1h" | "h1" | "60m" => Timeframe::H1,
            "4h" | "h4" => Timeframe::H4,
            "1d" | "d1" | "d" => Timeframe::D1,
            _ => return Err(UnknownTimeframe(t.to_string())),
        };
        Ok(found)
    }
}

impl std::str::FromStr for Timeframe {
    type Err = UnknownTimeframe;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timeframe::parse(s)
    }
}

impl std::fmt::Display for Timeframe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_round_trips() {
        for tf in Timeframe::ALL {
            assert_eq!(Timeframe::parse(tf.as_str()).unwrap(), tf);
        }
        assert_eq!(Timeframe::parse("H4").unwrap(), Timeframe::H4);
        assert!(Timeframe::parse("2h").is_err());
    }

    #[test]
    fn chain_is_each_a_multiple_of_the_last() {
        let mut tf = Timeframe::M1;
        while let Some(next) = tf.coarser() {
            assert_eq!(next.seconds() % tf.seconds(), 0);
            tf = next;
        }
        assert_eq!(tf, Timeframe::D1);
    }
}
