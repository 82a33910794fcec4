//! A follower's risk settings, checked once when they are saved so the gates never meet nonsense.

use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use domain::Lots;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How a copied order is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Sizing {
    /// The same size every time; no stop loss needed.
    FixedLots { lots: Decimal },
    /// Lose at most `percent` of the balance if the stop loss is hit.
    RiskPercent { percent: Decimal },
    /// A fraction of the Kelly bet from the provider's realised results, never above `max_risk_percent`.
    /// Providers with fewer than `min_trades` closed trades are sized at `max_risk_percent` instead, because
    /// a win rate over a handful of trades says little.
    Kelly { fraction: Decimal, max_risk_percent: Decimal, min_trades: u32 },
}

impl Sizing {
    pub const DEFAULT_RISK_PERCENT: Decimal = Decimal::from_parts(2, 0, 0, false, 0);
    pub const DEFAULT_KELLY_FRACTION: Decimal = Decimal::from_parts(25, 0, 0, false, 2);
    pub const DEFAULT_KELLY_MIN_TRADES: u32 = 20;

    /// Quarter Kelly, capped at the default 2% risk, from 20 trades on.
    pub fn default_kelly() -> Sizing {
        Sizing::Kelly {
            fraction: Self::DEFAULT_KELLY_FRACTION,
            max_risk_percent: Self::DEFAULT_RISK_PERCENT,
            min_trades: Self::DEFAULT_KELLY_MIN_TRADES,
        }
    }

    /// Whether the size depends on the stop-loss distance (so a signal without one cannot be sized).
    pub fn needs_stop_loss(&self) -> bool {
        !matches!(self, Sizing::FixedLots { .. })
    }
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing::RiskPercent { percent: Self::DEFAULT_RISK_PERCENT }
    }
}

/// The hours a follower copies trades in, as written in settings, before any check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursDraft {
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// Days a session may start on; empty means every day.
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
}

/// Settings as a form, the database or a config file give them; [`FollowerRiskSettings::new_checked`] turns
/// them into settings the pipeline trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskSettingsDraft {
    /// The subscription tier's signals a day; None is unlimited.
    pub signals_per_day: Option<u32>,
    /// Percent of the day's starting balance that may be lost before copying stops for the day.
    pub daily_loss_percent: Decimal,
    /// IANA name, e.g. `Europe/London`; the trading day and the hours window are in it.
    pub time_zone: String,
    pub hours: Option<HoursDraft>,
    pub max_open_positions: u32,
    pub sizing: Sizing,
    pub min_lots: Decimal,
    pub max_lots: Decimal,
    pub lot_step: Decimal,
}

impl Default for RiskSettingsDraft {
    fn default() -> Self {
        RiskSettingsDraft {
            signals_per_day: None,
            daily_loss_percent: Decimal::from(5),
            time_zone: "UTC".into(),
            hours: None,
            max_open_positions: 3,
            sizing: Sizing::default(),
            min_lots: Lots::MIN,
            max_lots: Decimal::from(10),
            lot_step: Lots::MIN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskSettingsError {
    #[error("the daily loss limit is a percentage above 0 and at most 100, got {0}")]
    DailyLossPercent(Decimal),
    #[error("{0:?} is not a time zone; use an IANA name such as Europe/London or America/New_York")]
    TimeZone(String),
    #[error("the trading hours start and end at the same time ({0}); leave the hours unset to trade all day")]
    EmptyWindow(NaiveTime),
    #[error("trading hours are whole minutes, got {0}")]
    WindowSeconds(NaiveTime),
    #[error("at least one open position must be allowed")]
    MaxOpenPositions,
    #[error("the risk per trade is a percentage above 0 and at most 100, got {0}")]
    RiskPercent(Decimal),
    #[error("the Kelly fraction is above 0 and at most 1, got {0}")]
    KellyFraction(Decimal),
    #[error("the Kelly sizing needs at least 1 closed trade before it trusts a provider, got 0")]
    KellyMinTrades,
    #[error("the lot step must be a positive multiple of 0.01, got {0}")]
    LotStep(Decimal),
    #[error("lots must be between 0.01 and 100, got {0}")]
    LotsRange(Decimal),
    #[error("{what} {value} is not a multiple of the lot step {step}")]
    OffStep { what: &'static str, value: Decimal, step: Decimal },
    #[error("the minimum lots {min} are above the maximum {max}")]
    MinAboveMax { min: Decimal, max: Decimal },
    #[error("the fixed size {lots} is outside the allowed {min} to {max} lots")]
    FixedOutsideRange { lots: Decimal, min: Decimal, max: Decimal },
}

/// A daily window in the follower's time zone. `start` is inclusive and `end` exclusive; when `end` is
/// earlier than `start` the window crosses midnight. A session belongs to the day it starts on, so a
/// 22:00–02:00 window on Fridays is open from Friday 22:00 to Saturday 02:00.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradingHours {
    start: NaiveTime,
    end: NaiveTime,
    /// Empty: every day.
    weekdays: Vec<Weekday>,
}

impl TradingHours {
    pub fn new(start: NaiveTime, end: NaiveTime, weekdays: &[Weekday]) -> Result<TradingHours, RiskSettingsError> {
        use chrono::Timelike;
        for t in [start, end] {
            if t.second() != 0 || t.nanosecond() != 0 {
                return Err(RiskSettingsError::WindowSeconds(t));
            }
        }
        if start == end {
            return Err(RiskSettingsError::EmptyWindow(start));
        }
        let mut days: Vec<Weekday> = Vec::new();
        // Kept in Monday-first order with no repeats, so reasons list them the way people read a week.
        for day in [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun] {
            if weekdays.contains(&day) {
                days.push(day);
            }
        }
        if days.len() == 7 {
            days.clear();
        }
        Ok(TradingHours { start, end, weekdays: days })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Empty means every day.
    pub fn weekdays(&self) -> &[Weekday] {
        &self.weekdays
    }

    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether local wall-clock `time` on local `day` is inside the window.
    pub fn contains(&self, day: Weekday, time: NaiveTime) -> bool {
        let session_day = if !self.crosses_midnight() {
            if time < self.start || time >= self.end {
                return false;
            }
            day
        } else if time >= self.start {
            day
        } else if time < self.end {
            // After midnight: the session started yesterday.
            day.pred()
        } else {
            return false;
        };
        self.weekdays.is_empty() || self.weekdays.contains(&session_day)
    }
}

/// A follower's validated risk settings. Built only by [`FollowerRiskSettings::new_checked`] (or by
/// deserialising, which calls it), so every value the gates read is in range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RiskSettingsDraft", into = "RiskSettingsDraft")]
pub struct FollowerRiskSettings {
    signals_per_day: Option<u32>,
    daily_loss_percent: Decimal,
    time_zone: Tz,
    hours: Option<TradingHours>,
    max_open_positions: u32,
    sizing: Sizing,
    min_lots: Decimal,
    max_lots: Decimal,
    lot_step: Decimal,
}

fn percent_in_range(p: Decimal) -> bool {
    p > Decimal::ZERO && p <= Decimal::ONE_HUNDRED
}

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    (value % step).is_zero()
}

impl FollowerRiskSettings {
    pub fn new_checked(draft: RiskSettingsDraft) -> Result<FollowerRiskSettings, RiskSettingsError> {
        if !percent_in_range(draft.daily_loss_percent) {
            return Err(RiskSettingsError::DailyLossPercent(draft.daily_loss_percent));
        }
        let time_zone: Tz =
            draft.time_zone.trim().parse().map_err(|_| RiskSettingsError::TimeZone(draft.time_zone.clone()))?;
        let hours = draft.hours.map(|h| TradingHours::new(h.start, h.end, &h.weekdays)).transpose()?;
        if draft.max_open_positions == 0 {
            return Err(RiskSettingsError::MaxOpenPositions);
        }
        let step = draft.lot_step;
        // Orders leave as domain `Lots` (0.01 to 100 in steps of 0.01), so every size must land on that grid.
        if step <= Decimal::ZERO || step > Lots::MAX || !is_multiple(step, Lots::MIN) {
            return Err(RiskSettingsError::LotStep(step));
        }
        for (what, value) in [("the minimum lots", draft.min_lots), ("the maximum lots", draft.max_lots)] {
            if value < Lots::MIN || value > Lots::MAX {
                return Err(RiskSettingsError::LotsRange(value));
            }
            if !is_multiple(value, step) {
                return Err(RiskSettingsError::OffStep { what, value, step });
            }
        }
        if draft.min_lots > draft.max_lots {
            return Err(RiskSettingsError::MinAboveMax { min: draft.min_lots, max: draft.max_lots });
        }
        match draft.sizing {
            Sizing::FixedLots { lots } => {
                if lots < draft.min_lots || lots > draft.max_lots {
                    return Err(RiskSettingsError::FixedOutsideRange {
                        lots,
                        min: draft.min_lots,
                        max: draft.max_lots,
                    });
                }
                if !is_multiple(lots, step) {
                    return Err(RiskSettingsError::OffStep { what: "the fixed size", value: lots, step });
                }
            }
            Sizing::RiskPercent { percent } => {
                if !percent_in_range(percent) {
                    return Err(RiskSettingsError::RiskPercent(percent));
                }
            }
            Sizing::Kelly { fraction, max_risk_percent, min_trades } => {
                if fraction <= Decimal::ZERO || fraction > Decimal::ONE {
                    return Err(RiskSettingsError::KellyFraction(fraction));
                }
                if !percent_in_range(max_risk_percent) {
                    return Err(RiskSettingsError::RiskPercent(max_risk_percent));
                }
                if min_trades == 0 {
                    return Err(RiskSettingsError::KellyMinTrades);
                }
            }
        }
        Ok(FollowerRiskSettings {
            signals_per_day: draft.signals_per_day,
            daily_loss_percent: draft.daily_loss_percent.normalize(),
            time_zone,
            hours,
            max_open_positions: draft.max_open_positions,
            sizing: draft.sizing,
            min_lots: draft.min_lots.normalize(),
            max_lots: draft.max_lots.normalize(),
            lot_step: step.normalize(),
        })
    }

    pub fn signals_per_day(&self) -> Option<u32> {
        self.signals_per_day
    }

    pub fn daily_loss_percent(&self) -> Decimal {
        self.daily_loss_percent
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn hours(&self) -> Option<&TradingHours> {
        self.hours.as_ref()
    }

    pub fn max_open_positions(&self) -> u32 {
        self.max_open_positions
    }

    pub fn sizing(&self) -> Sizing {
        self.sizing
    }

    pub fn min_lots(&self) -> Decimal {
        self.min_lots
    }

    pub fn max_lots(&self) -> Decimal {
        self.max_lots
    }

    pub fn lot_step(&self) -> Decimal {
        self.lot_step
    }

    /// The follower's current trading day as a UTC range `[start, end)`: what the caller counts signals taken
    /// and realised P&L over, so "today" means the same day the gates mean. A day can be 23 or 25 hours long.
    pub fn trading_day(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let today = now.with_timezone(&self.time_zone).date_naive();
        let start = local_midnight(self.time_zone, today);
        let end = today.succ_opt().map_or(DateTime::<Utc>::MAX_UTC, |d| local_midnight(self.time_zone, d));
        (start, end)
    }
}

/// The first instant of a local date. Some zones skip midnight on a DST change (clocks jump 00:00 → 01:00),
/// so the day then starts at the first local time that exists.
fn local_midnight(tz: Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_time(NaiveTime::MIN);
    for _ in 0..48 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(30);
    }
    // No zone has a gap this long; fall back to midnight UTC rather than fail.
    date.and_time(NaiveTime::MIN).and_utc()
}

impl Default for FollowerRiskSettings {
    fn default() -> Self {
        match FollowerRiskSettings::new_checked(RiskSettingsDraft::default()) {
            Ok(settings) => settings,
            Err(e) => unreachable!("the default risk settings are valid: {e}"),
        }
    }
}

impl TryFrom<RiskSettingsDraft> for FollowerRiskSettings {
    type Error = RiskSettingsError;
    fn try_from(draft: RiskSettingsDraft) -> Result<Self, Self::Error> {
        FollowerRiskSettings::new_checked(draft)
    }
}

impl From<FollowerRiskSettings> for RiskSettingsDraft {
    fn from(s: FollowerRiskSettings) -> RiskSettingsDraft {
        RiskSettingsDraft {
            signals_per_day: s.signals_per_day,
            daily_loss_percent: s.daily_loss_percent,
            time_zone: s.time_zone.name().to_string(),
            hours: s.hours.map(|h| HoursDraft { start: h.start, end: h.end, weekdays: h.weekdays }),
            max_open_positions: s.max_open_positions,
            sizing: s.sizing,
            min_lots: s.min_lots,
            max_lots: s.max_lots,
            lot_step: s.lot_step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn defaults_are_the_issue_defaults() {
        let s = FollowerRiskSettings::default();
        assert_eq!(s.daily_loss_percent(), dec!(5));
        assert_eq!(s.max_open_positions(), 3);
        assert_eq!(s.sizing(), Sizing::RiskPercent { percent: dec!(2) });
        assert_eq!(s.signals_per_day(), None);
        assert_eq!(s.time_zone(), chrono_tz::UTC);
    }

    #[test]
    fn nonsense_is_refused_with_a_typed_error() {
        let with = |f: fn(&mut RiskSettingsDraft)| {
            let mut d = RiskSettingsDraft::default();
            f(&mut d);
            FollowerRiskSettings::new_checked(d).unwrap_err()
        };
        assert_eq!(with(|d| d.daily_loss_percent = dec!(-1)), RiskSettingsError::DailyLossPercent(dec!(-1)));
        assert_eq!(with(|d| d.daily_loss_percent = dec!(0)), RiskSettingsError::DailyLossPercent(dec!(0)));
        assert_eq!(with(|d| d.daily_loss_percent = dec!(100.1)), RiskSettingsError::DailyLossPercent(dec!(100.1)));
        assert!(matches!(with(|d| d.time_zone = "Mars/Olympus".into()), RiskSettingsError::TimeZone(_)));
        assert_eq!(
            with(|d| d.hours = Some(HoursDraft { start: hm(9, 0), end: hm(9, 0), weekdays: vec![] })),
            RiskSettingsError::EmptyWindow(hm(9, 0))
        );
        assert_eq!(with(|d| d.max_open_positions = 0), RiskSettingsError::MaxOpenPositions);
        assert_eq!(
            with(|d| d.sizing = Sizing::RiskPercent { percent: dec!(-2) }),
            RiskSettingsError::RiskPercent(dec!(-2))
        );
        assert_eq!(
            with(|d| d.sizing = Sizing::Kelly { fraction: dec!(1.5), max_risk_percent: dec!(2), min_trades: 20 }),
            RiskSettingsError::KellyFraction(dec!(1.5))
        );
        assert_eq!(
            with(|d| d.sizing = Sizing::Kelly { fraction: dec!(0.25), max_risk_percent: dec!(2), min_trades: 0 }),
            RiskSettingsError::KellyMinTrades
        );
        assert_eq!(with(|d| d.lot_step = dec!(0.005)), RiskSettingsError::LotStep(dec!(0.005)));
        assert_eq!(with(|d| d.lot_step = dec!(0)), RiskSettingsError::LotStep(dec!(0)));
        assert!(
            matches!(with(|d| d.lot_step = dec!(0.1)), RiskSettingsError::OffStep { value, .. } if value == dec!(0.01))
        );
        assert_eq!(with(|d| d.max_lots = dec!(101)), RiskSettingsError::LotsRange(dec!(101)));
        assert!(matches!(
            with(|d| {
                d.min_lots = dec!(2);
                d.max_lots = dec!(1);
            }),
            RiskSettingsError::MinAboveMax { .. }
        ));
        assert!(matches!(
            with(|d| d.sizing = Sizing::FixedLots { lots: dec!(20) }),
            RiskSettingsError::FixedOutsideRange { .. }
        ));
        assert!(matches!(
            with(|d| d.sizing = Sizing::FixedLots { lots: dec!(0.015) }),
            RiskSettingsError::OffStep { .. }
        ));
    }

    #[test]
    fn deserialising_validates_and_round_trips() {
        let json = r#"{"daily_loss_percent":"3","time_zone":"Europe/London",
            "hours":{"start":"22:00:00","end":"02:00:00","weekdays":["Fri","Mon"]},
            "sizing":{"mode":"kelly","fraction":"0.25","max_risk_percent":"1.5","min_trades":30}}"#;
        let s: FollowerRiskSettings = serde_json::from_str(json).unwrap();
        assert_eq!(s.time_zone(), chrono_tz::Europe::London);
        assert_eq!(s.hours().unwrap().weekdays(), &[Weekday::Mon, Weekday::Fri]);
        assert!(s.hours().unwrap().crosses_midnight());
        let back: FollowerRiskSettings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let bad = r#"{"daily_loss_percent":"-5"}"#;
        let err = serde_json::from_str::<FollowerRiskSettings>(bad).unwrap_err().to_string();
        assert!(err.contains("daily loss limit"), "{err}");
    }

    #[test]
    fn trading_day_follows_the_time_zone_and_dst() {
        let draft = RiskSettingsDraft { time_zone: "America/New_York".into(), ..RiskSettingsDraft::default() };
        let s = FollowerRiskSettings::new_checked(draft).unwrap();
        // 2026-03-08 is the US spring-forward day: 23 hours long, starting at 05:00 UTC (midnight EST).
        let now = "2026-03-08T12:00:00Z".parse().unwrap();
        let (start, end) = s.trading_day(now);
        assert_eq!(start, "2026-03-08T05:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(end, "2026-03-09T04:00:00Z".parse::<DateTime<Utc>>().unwrap());
        // 03:00 UTC on the 8th is still the 7th in New York.
        let (start, _) = s.trading_day("2026-03-08T03:00:00Z".parse().unwrap());
        assert_eq!(start, "2026-03-07T05:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn windows_with_and_without_midnight() {
        let day = TradingHours::new(hm(8, 0), hm(17, 0), &[]).unwrap();
        assert!(day.contains(Weekday::Sun, hm(8, 0)));
        assert!(day.contains(Weekday::Sun, hm(16, 59)));
        assert!(!day.contains(Weekday::Sun, hm(17, 0)));
        assert!(!day.contains(Weekday::Sun, hm(7, 59)));
        let night = TradingHours::new(hm(22, 0), hm(2, 0), &[Weekday::Fri]).unwrap();
        assert!(night.contains(Weekday::Fri, hm(22, 0)));
        assert!(night.contains(Weekday::Sat, hm(1, 59)), "Friday's session runs into Saturday");
        assert!(!night.contains(Weekday::Sat, hm(2, 0)));
        assert!(!night.contains(Weekday::Sat, hm(22, 0)), "no session starts on Saturday");
        assert!(!night.contains(Weekday::Fri, hm(1, 0)), "Thursday's session is not traded");
        assert!(!night.contains(Weekday::Fri, hm(12, 0)));
    }
}
