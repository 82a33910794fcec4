//! A user's notification settings: what the router checks before it sends a signal to them.

use crate::{Symbol, Timeframe};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a user's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "channel_id")]
pub enum Delivery {
    /// A direct message to the linked Discord user.
    Dm,
    /// A message in a guild channel, by Discord channel id.
    Channel(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSettings {
    pub notifications_enabled: bool,
    /// Empty means every timeframe.
    pub enabled_timeframes: Vec<Timeframe>,
    /// Empty means every pair.
    pub preferred_pairs: Vec<Symbol>,
    /// 0..=1.
    pub min_confidence: Decimal,
    pub only_ml_enhanced: bool,
    pub max_notifications_per_day: u32,
    pub notification_cooldown_minutes: u32,
    pub delivery: Delivery,
}

impl Default for UserSettings {
    fn default() -> Self {
        UserSettings {
            notifications_enabled: true,
            enabled_timeframes: vec![Timeframe::H1, Timeframe::H4],
            preferred_pairs: Vec::new(),
            // Confidence is the calibrated probability of the take profit first at 1:2, where 33% breaks even.
            min_confidence: Decimal::new(35, 2),
            only_ml_enhanced: false,
            max_notifications_per_day: 20,
            notification_cooldown_minutes: 60,
            delivery: Delivery::Dm,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("minimum confidence must be between 0 and 1, got {0}")]
    MinConfidence(Decimal),
    #[error("at most 1000 notifications a day, got {0}")]
    DailyCap(u32),
    #[error("cooldown is at most 10080 minutes (a week), got {0}")]
    Cooldown(u32),
    #[error("a delivery channel id is a Discord snowflake (digits), got {0:?}")]
    ChannelId(String),
}

impl UserSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.min_confidence < Decimal::ZERO || self.min_confidence > Decimal::ONE {
            return Err(SettingsError::MinConfidence(self.min_confidence));
        }
        if self.max_notifications_per_day > 1000 {
            return Err(SettingsError::DailyCap(self.max_notifications_per_day));
        }
        if self.notification_cooldown_minutes > 10_080 {
            return Err(SettingsError::Cooldown(self.notification_cooldown_minutes));
        }
        if let Delivery::Channel(id) = &self.delivery
            && (id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(SettingsError::ChannelId(id.clone()));
        }
        Ok(())
    }
}
