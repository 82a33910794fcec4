//! Signals: an instruction to trade, from the engine, a provider channel or a webhook.

use crate::{Price, Side, Symbol, Timeframe, trade::check_levels};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where to get in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Entry {
    Market,
    Price { price: Price },
    Zone { low: Price, high: Price },
}

impl Entry {
    /// The price the SL/TP sides are checked against: the zone edge a fill would be worst at.
    fn reference(self, side: Side) -> Option<(Price, Price)> {
        match self {
            Entry::Market => None,
            Entry::Price { price } => Some((price, price)),
            Entry::Zone { low, high } => Some(match side {
                Side::Long => (low, high),
                Side::Short => (high, low),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "channel")]
pub enum SignalSource {
    Engine,
    Provider(String),
    Webhook,
}

impl SignalSource {
    pub fn to_text(&self) -> String {
        match self {
            SignalSource::Engine => "engine".into(),
            SignalSource::Provider(channel) => format!("provider:{channel}"),
            SignalSource::Webhook => "webhook".into(),
        }
    }

    pub fn from_text(text: &str) -> Option<SignalSource> {
        match text {
            "engine" => Some(SignalSource::Engine),
            "webhook" => Some(SignalSource::Webhook),
            other => other.strip_prefix("provider:").map(|c| SignalSource::Provider(c.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error(transparent)]
    Levels(#[from] crate::TradeError),
    #[error("a zone's low {low} must be below its high {high}")]
    InvertedZone { low: Price, high: Price },
    #[error("confidence must be between 0 and 1, got {0}")]
    Confidence(Decimal),
    #[error("leverage must be between 1 and 125, got {0}")]
    Leverage(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub symbol: Symbol,
    pub timeframe: Option<Timeframe>,
    pub side: Side,
    pub entry: Entry,
    pub stop_loss: Option<Price>,
    pub take_profits: Vec<Price>,
    pub leverage: Option<u32>,
    /// 0..=1.
    pub confidence: Option<Decimal>,
    pub source: SignalSource,
    pub model_version: Option<String>,
    pub stage1_prob: Option<f64>,
    pub stage2_prob: Option<f64>,
    pub created_at: DateTime<Utc>,
}

impl Signal {
    /// Rejects what no trader could act on: levels on the wrong side, an inverted zone, absurd values.
    pub fn validate(&self) -> Result<(), SignalError> {
        if let Entry::Zone { low, high } = self.entry
            && low >= high
        {
            return Err(SignalError::InvertedZone { low, high });
        }
        if let Some((sl_ref, tp_ref)) = self.entry.reference(self.side) {
            check_levels(self.side, sl_ref, self.stop_loss, None)?;
            for tp in &self.take_profits {
                check_levels(self.side, tp_ref, None, Some(*tp))?;
            }
        }
        if let Some(c) = self.confidence
            && (c < Decimal::ZERO || c > Decimal::ONE)
        {
            return Err(SignalError::Confidence(c));
        }
        if let Some(l) = self.leverage
            && !(1..=125).contains(&l)
        {
            return Err(SignalError::Leverage(l));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(side: Side, entry: Entry, sl: &str, tp: &str) -> Signal {
        Signal {
            symbol: Symbol::normalize("BTCUSDT"),
            timeframe: Some(Timeframe::H1),
            side,
            entry,
            stop_loss: Some(Price::parse(sl).unwrap()),
            take_profits: vec![Price::parse(tp).unwrap()],
            leverage: None,
            confidence: None,
            source: SignalSource::Engine,
            model_version: None,
            stage1_prob: None,
            stage2_prob: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn zone_levels_checked_against_the_worst_edge() {
        let zone = Entry::Zone { low: Price::parse("100").unwrap(), high: Price::parse("110").unwrap() };
        assert!(signal(Side::Long, zone, "95", "120").validate().is_ok());
        assert!(signal(Side::Long, zone, "105", "120").validate().is_err());
        assert!(signal(Side::Short, zone, "115", "90").validate().is_ok());
        assert!(signal(Side::Short, zone, "115", "105").validate().is_err());
        assert!(signal(Side::Long, Entry::Market, "1", "2").validate().is_ok());
    }

    #[test]
    fn source_round_trips() {
        for s in [SignalSource::Engine, SignalSource::Webhook, SignalSource::Provider("123".into())] {
            assert_eq!(SignalSource::from_text(&s.to_text()), Some(s));
        }
    }
}
