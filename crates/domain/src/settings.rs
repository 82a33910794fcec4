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
    /// Minutes between "still running" updates (live P&L) of each open trade; 0 is off. Settings saved
    /// before this existed read as off.
    #[serde(default)]
    pub running_update_minutes: u32,
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
            running_update_minutes: 0,
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
    #[error(
        "running updates are off (0) or every {min} to {max} minutes, got {0}",
        min = RUNNING_UPDATE_MINUTES.start(),
        max = RUNNING_UPDATE_MINUTES.end()
    )]
    RunningUpdates(u32),
}

/// The periods a user may ask "still running" updates at, besides 0 (off): more often than every five
/// minutes is noise in a DM, and a day is the longest period worth a reminder.
pub const RUNNING_UPDATE_MINUTES: std::ops::RangeInclusive<u32> = 5..=1440;

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
        if self.running_update_minutes != 0 && !RUNNING_UPDATE_MINUTES.contains(&self.running_update_minutes) {
            return Err(SettingsError::RunningUpdates(self.running_update_minutes));
        }
        Ok(())
    }
}

/// Why a user's settings do not want a signal; `None` from [`UserSettings::declines`] means they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    NotificationsOff,
    Timeframe,
    Pair,
    BelowMinimumConfidence,
    NotMlEnhanced,
}

impl UserSettings {
    /// The router's per-user filter. The cooldown and the daily cap depend on what was already sent, so the
    /// store checks them in the transaction that writes the notification.
    pub fn declines(&self, signal: &crate::Signal) -> Option<Declined> {
        if !self.notifications_enabled {
            return Some(Declined::NotificationsOff);
        }
        if let Some(tf) = signal.timeframe
            && !self.enabled_timeframes.is_empty()
            && !self.enabled_timeframes.contains(&tf)
        {
            return Some(Declined::Timeframe);
        }
        if !self.preferred_pairs.is_empty() && !self.preferred_pairs.contains(&signal.symbol) {
            return Some(Declined::Pair);
        }
        // A provider's signal has no model confidence; the minimum applies to what has one.
        if let Some(confidence) = signal.confidence
            && confidence < self.min_confidence
        {
            return Some(Declined::BelowMinimumConfidence);
        }
        if self.only_ml_enhanced && signal.stage2_prob.is_none() {
            return Some(Declined::NotMlEnhanced);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Price, Side, Signal, SignalSource, Symbol, Timeframe};
    use rust_decimal::Decimal;

    fn signal(symbol: &str, tf: Timeframe, confidence: Option<Decimal>, ml: bool) -> Signal {
        Signal {
            symbol: Symbol::normalize(symbol),
            timeframe: Some(tf),
            side: Side::Long,
            entry: Entry::Price { price: Price::parse("1.1").unwrap() },
            stop_loss: None,
            take_profits: vec![],
            leverage: None,
            confidence,
            source: SignalSource::Engine,
            model_version: ml.then(|| "m".to_string()),
            stage1_prob: None,
            stage2_prob: ml.then_some(0.5),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn each_setting_filters_what_it_names() {
        let s = UserSettings {
            enabled_timeframes: vec![Timeframe::H1],
            preferred_pairs: vec![Symbol::normalize("EURUSD")],
            min_confidence: Decimal::new(40, 2),
            only_ml_enhanced: true,
            ..UserSettings::default()
        };
        let ok = signal("EURUSD", Timeframe::H1, Some(Decimal::new(40, 2)), true);
        assert_eq!(s.declines(&ok), None);
        assert_eq!(s.declines(&signal("GBPUSD", Timeframe::H1, Some(Decimal::ONE), true)), Some(Declined::Pair));
        assert_eq!(s.declines(&signal("EURUSD", Timeframe::H4, Some(Decimal::ONE), true)), Some(Declined::Timeframe));
        assert_eq!(
            s.declines(&signal("EURUSD", Timeframe::H1, Some(Decimal::new(39, 2)), true)),
            Some(Declined::BelowMinimumConfidence)
        );
        assert_eq!(s.declines(&signal("EURUSD", Timeframe::H1, None, false)), Some(Declined::NotMlEnhanced));
        let off = UserSettings { notifications_enabled: false, ..s.clone() };
        assert_eq!(off.declines(&ok), Some(Declined::NotificationsOff));
        let everything = UserSettings::default();
        assert_eq!(everything.declines(&signal("BTCUSDT", Timeframe::H4, None, false)), None);
    }

    #[test]
    fn running_updates_are_off_or_between_five_minutes_and_a_day() {
        let with = |minutes| UserSettings { running_update_minutes: minutes, ..UserSettings::default() };
        assert_eq!(UserSettings::default().running_update_minutes, 0);
        for ok in [0, 5, 60, 1440] {
            assert_eq!(with(ok).validate(), Ok(()), "{ok}");
        }
        for bad in [1, 4, 1441, u32::MAX] {
            assert_eq!(with(bad).validate(), Err(SettingsError::RunningUpdates(bad)), "{bad}");
        }
    }
}
