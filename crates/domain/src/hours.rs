//! When each asset class trades, so that "no candle for a while" can be told apart from "the market is shut".
//!
//! Crypto trades around the clock. Forex and metals trade from Sunday 22:00 UTC to Friday 22:00 UTC (the
//! usual retail convention; the exact hour shifts with New York daylight time at some brokers, which the
//! staleness alarm absorbs with its margin of two timeframes). US stocks trade the NYSE regular session,
//! 09:30–16:00 New York time on weekdays. Exchange holidays are not known here: on one, a stock or forex
//! pair looks like a market that stopped, which is what a user should be told anyway if their signals stop.

use crate::AssetClass;
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;

/// How far back [`open_time_between`] looks: anything older is stale for every timeframe we have.
const LOOKBACK_DAYS: i64 = 400;

/// Whether `class` is trading at `at`.
pub fn is_open(class: AssetClass, at: DateTime<Utc>) -> bool {
    match class {
        AssetClass::Crypto => true,
        AssetClass::Forex | AssetClass::Metal => !in_fx_weekend(at),
        AssetClass::Stock => stock_session(at).is_some_and(|(open, close)| at >= open && at < close),
    }
}

/// How much trading time of `class` lies between `from` and `to` (zero when `to` is not after `from`). A
/// range longer than a year is cut to its last year.
pub fn open_time_between(class: AssetClass, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    if to <= from {
        return Duration::zero();
    }
    let from = from.max(to - Duration::days(LOOKBACK_DAYS));
    match class {
        AssetClass::Crypto => to - from,
        AssetClass::Forex | AssetClass::Metal => (to - from) - fx_closed_between(from, to),
        AssetClass::Stock => stock_open_between(from, to),
    }
}

/// The longest a session of `class` lasts without a break: a candle coarser than this can never be "two
/// timeframes" late inside one session, so the staleness budget is capped at twice it.
pub fn longest_session(class: AssetClass) -> Option<Duration> {
    match class {
        AssetClass::Crypto | AssetClass::Forex | AssetClass::Metal => None,
        AssetClass::Stock => Some(Duration::minutes(390)),
    }
}

fn fx_week_close_before(at: DateTime<Utc>) -> DateTime<Utc> {
    // The most recent Friday 22:00 at or before `at`.
    let days_since_friday = (at.weekday().num_days_from_monday() + 7 - Weekday::Fri.num_days_from_monday()) % 7;
    let friday = at.date_naive() - Duration::days(i64::from(days_since_friday));
    let close = Utc.from_utc_datetime(&friday.and_time(NaiveTime::from_hms_opt(22, 0, 0).expect("a valid time")));
    if close > at { close - Duration::days(7) } else { close }
}

fn in_fx_weekend(at: DateTime<Utc>) -> bool {
    at < fx_week_close_before(at) + Duration::days(2)
}

fn fx_closed_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    let mut closed = Duration::zero();
    let mut close = fx_week_close_before(from);
    while close < to {
        let reopen = close + Duration::days(2);
        let (start, end) = (close.max(from), reopen.min(to));
        if end > start {
            closed += end - start;
        }
        close += Duration::days(7);
    }
    closed
}

/// The regular session (open, close) in UTC of the New York trading day `at` falls on, if that day is a
/// weekday.
fn stock_session(at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    session_on(at.with_timezone(&New_York).date_naive())
}

fn session_on(day: chrono::NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        return None;
    }
    let local = |h, m| {
        New_York
            .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("a valid time")))
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    // 09:30 and 16:00 are never in a daylight-saving gap or fold (those are at 02:00).
    Some((local(9, 30)?, local(16, 0)?))
}

fn stock_open_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    let mut open = Duration::zero();
    let mut day = from.with_timezone(&New_York).date_naive();
    let last = to.with_timezone(&New_York).date_naive();
    while day <= last {
        if let Some((start, end)) = session_on(day) {
            let (start, end) = (start.max(from), end.min(to));
            if end > start {
                open += end - start;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn forex_closes_from_friday_22_to_sunday_22_utc() {
        // 2026-11-20 is a Friday.
        assert!(is_open(AssetClass::Forex, at("2026-11-20T21:59:00Z")));
        assert!(!is_open(AssetClass::Forex, at("2026-11-20T22:00:00Z")));
        assert!(!is_open(AssetClass::Metal, at("2026-11-21T12:00:00Z")));
        assert!(!is_open(AssetClass::Forex, at("2026-11-22T21:59:00Z")));
        assert!(is_open(AssetClass::Forex, at("2026-11-22T22:00:00Z")));
        assert!(is_open(AssetClass::Forex, at("2026-11-18T03:00:00Z")));
        assert!(is_open(AssetClass::Crypto, at("2026-11-21T12:00:00Z")));
    }

    #[test]
    fn the_weekend_is_not_trading_time() {
        let friday_21 = at("2026-11-20T21:00:00Z");
        let sunday_23 = at("2026-11-22T23:00:00Z");
        assert_eq!(open_time_between(AssetClass::Forex, friday_21, sunday_23), Duration::hours(2));
        assert_eq!(open_time_between(AssetClass::Crypto, friday_21, sunday_23), Duration::hours(50));
        // Two weekends in one range.
        assert_eq!(
            open_time_between(AssetClass::Forex, at("2026-11-13T21:00:00Z"), sunday_23),
            Duration::hours(2 + 5 * 24)
        );
        assert_eq!(open_time_between(AssetClass::Forex, sunday_23, friday_21), Duration::zero());
    }

    #[test]
    fn stocks_trade_the_new_york_session_whatever_the_daylight_time() {
        // November: New York is UTC−5, so 09:30 is 14:30 UTC.
        assert!(!is_open(AssetClass::Stock, at("2026-11-18T14:29:00Z")));
        assert!(is_open(AssetClass::Stock, at("2026-11-18T14:30:00Z")));
        assert!(!is_open(AssetClass::Stock, at("2026-11-18T21:00:00Z")));
        // July: UTC−4, 09:30 is 13:30 UTC.
        assert!(is_open(AssetClass::Stock, at("2026-07-15T13:30:00Z")));
        assert!(!is_open(AssetClass::Stock, at("2026-11-21T15:00:00Z")), "a Saturday");
        // From Friday's close to Monday 10:30: one hour of trading.
        assert_eq!(
            open_time_between(AssetClass::Stock, at("2026-11-20T21:00:00Z"), at("2026-11-23T15:30:00Z")),
            Duration::hours(1)
        );
        assert_eq!(
            open_time_between(AssetClass::Stock, at("2026-11-17T00:00:00Z"), at("2026-11-19T00:00:00Z")),
            Duration::minutes(2 * 390)
        );
    }
}
