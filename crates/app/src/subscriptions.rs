//! Which (instrument, timeframe) pairs a live feed streams, derived from users' settings.
//!
//! Every live feed asks the same question (what do the enabled users want that this vendor can serve?) and
//! must answer it the same way at start and whenever a setting changes, so the answer lives here once:
//! [`derive`] is a pure function of the users' settings, the feed's own filter and the operator's extra
//! pairs from configuration.

use anyhow::Context as _;
use domain::{Instrument, InstrumentRegistry, Symbol, Timeframe, UserSettings};
use std::collections::{BTreeMap, BTreeSet};

/// The pairs to stream: every enabled user's preferred pairs (every instrument the feed serves when they named
/// none) × their enabled timeframes (all when none), limited to what `serves` accepts, plus `extra`
/// (`SYMBOL:TIMEFRAME` from configuration, not filtered: naming a pair the vendor cannot serve is an error the
/// feed reports at start); `fallback` when that leaves nothing.
///
/// Only the finest timeframe of each symbol is streamed: the pump resamples every series into all coarser
/// timeframes, so streaming 1h and 4h of one symbol would hand the scanner each 4h candle twice.
pub fn derive<'a>(
    users: impl IntoIterator<Item = &'a UserSettings>,
    serves: impl Fn(&Instrument) -> bool,
    extra: &[String],
    fallback: (Symbol, Timeframe),
) -> anyhow::Result<Vec<(Symbol, Timeframe)>> {
    let registry = InstrumentRegistry::global();
    let served: Vec<Symbol> =
        (0..u16::MAX).map_while(|i| registry.by_index(i)).filter(|i| serves(i)).map(|i| i.symbol.clone()).collect();
    let mut pairs = BTreeSet::new();
    for settings in users.into_iter().filter(|s| s.notifications_enabled) {
        let symbols = if settings.preferred_pairs.is_empty() { &served } else { &settings.preferred_pairs };
        let timeframes: &[Timeframe] =
            if settings.enabled_timeframes.is_empty() { &Timeframe::ALL } else { &settings.enabled_timeframes };
        for symbol in symbols.iter().filter(|s| registry.get(s.as_str()).is_ok_and(&serves)) {
            for timeframe in timeframes {
                pairs.insert((symbol.clone(), *timeframe));
            }
        }
    }
    for spec in extra {
        let (symbol, timeframe) =
            spec.split_once(':').with_context(|| format!("feed pair {spec:?} is not SYMBOL:TIMEFRAME"))?;
        let timeframe = Timeframe::parse(timeframe).with_context(|| format!("feed pair {spec:?}"))?;
        pairs.insert((Symbol::normalize(symbol), timeframe));
    }
    if pairs.is_empty() {
        pairs.insert(fallback);
    }
    let mut finest: BTreeMap<Symbol, Timeframe> = BTreeMap::new();
    for (symbol, timeframe) in pairs {
        let entry = finest.entry(symbol).or_insert(timeframe);
        if timeframe.seconds() < entry.seconds() {
            *entry = timeframe;
        }
    }
    Ok(finest.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AssetClass;

    fn crypto(i: &Instrument) -> bool {
        i.asset_class == AssetClass::Crypto && i.quote == "USDT"
    }

    fn settings(pairs: &[&str], timeframes: &[Timeframe]) -> UserSettings {
        UserSettings {
            preferred_pairs: pairs.iter().map(|p| Symbol::normalize(p)).collect(),
            enabled_timeframes: timeframes.to_vec(),
            ..UserSettings::default()
        }
    }

    #[test]
    fn keeps_only_served_pairs_at_their_finest_timeframe() {
        let users = [
            settings(&["BTCUSDT", "EURUSD"], &[Timeframe::H4, Timeframe::H1]),
            settings(&["ETHUSDT"], &[Timeframe::D1]),
        ];
        let pairs = derive(&users, crypto, &[], (Symbol::normalize("BTCUSDT"), Timeframe::H1)).unwrap();
        assert_eq!(
            pairs,
            vec![(Symbol::normalize("BTCUSDT"), Timeframe::H1), (Symbol::normalize("ETHUSDT"), Timeframe::D1)]
        );
    }

    #[test]
    fn disabled_users_count_for_nothing_and_the_fallback_fills_an_empty_set() {
        let mut off = settings(&["ETHUSDT"], &[Timeframe::M15]);
        off.notifications_enabled = false;
        let pairs = derive([&off], crypto, &[], (Symbol::normalize("BTCUSDT"), Timeframe::H1)).unwrap();
        assert_eq!(pairs, vec![(Symbol::normalize("BTCUSDT"), Timeframe::H1)]);
    }

    #[test]
    fn extra_pairs_are_added_and_a_malformed_one_is_an_error() {
        let pairs = derive([], crypto, &["solusdt:15m".into()], (Symbol::normalize("BTCUSDT"), Timeframe::H1)).unwrap();
        assert_eq!(pairs, vec![(Symbol::normalize("SOLUSDT"), Timeframe::M15)]);
        assert!(derive([], crypto, &["SOLUSDT".into()], (Symbol::normalize("BTCUSDT"), Timeframe::H1)).is_err());
        assert!(derive([], crypto, &["SOLUSDT:7m".into()], (Symbol::normalize("BTCUSDT"), Timeframe::H1)).is_err());
    }
}
