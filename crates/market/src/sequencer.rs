//! The ordering rule every live feed applies to closed candles: each (symbol, timeframe) remembers the open
//! time of the last candle it delivered, a candle not newer than that is dropped, and a candle further ahead
//! than one step leaves a hole the feed may fill first.
//!
//! Vendors repeat candles (a REST backfill overlapping the stream, a poll answering what the last one did),
//! send them out of order and skip some; with this one rule applied at the point of delivery, each candle
//! reaches the app once, in order, whichever vendor it came from.

use chrono::{DateTime, Utc};
use domain::{Symbol, Timeframe};
use std::collections::HashMap;

/// A (symbol, timeframe) pair, as feeds subscribe to them.
pub type Pair = (Symbol, Timeframe);

/// Where a candle stands against the last one delivered for its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// The pair's first candle, or the one right after the last: deliver it.
    Deliver,
    /// At or before the last delivered open time (`last`): a duplicate or out of order; drop it.
    Stale { last: DateTime<Utc> },
    /// Newer but not the next one: candles opening from `from` (inclusive) to `to` (exclusive, the open time
    /// of the candle checked) are missing. Delivering it now would leave them out for good, so a feed that can
    /// fetch them does so first.
    Gap { from: DateTime<Utc>, to: DateTime<Utc> },
}

/// The last candle delivered per pair; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandleSequencer {
    last: HashMap<Pair, DateTime<Utc>>,
}

impl CandleSequencer {
    /// Nothing delivered yet for any pair.
    pub fn new() -> Self {
        CandleSequencer::default()
    }

    /// Starts from resume points: per pair, the open time of the last candle already stored, so nothing at or
    /// before it is delivered again.
    pub fn resuming(resume_after: HashMap<Pair, DateTime<Utc>>) -> Self {
        CandleSequencer { last: resume_after }
    }

    /// The open time of the last candle delivered (or resumed from) for `pair`.
    pub fn last(&self, pair: &Pair) -> Option<DateTime<Utc>> {
        self.last.get(pair).copied()
    }

    /// Whether anything was delivered (or resumed from) for `pair`.
    pub fn knows(&self, pair: &Pair) -> bool {
        self.last.contains_key(pair)
    }

    /// The pairs with a last candle, in no particular order; a pair stays after its feed stops serving it, so
    /// one that comes back resumes where it stopped.
    pub fn pairs(&self) -> impl Iterator<Item = &Pair> {
        self.last.keys()
    }

    /// Where a candle opening at `open` stands for `pair`, without recording it.
    pub fn check(&self, pair: &Pair, open: DateTime<Utc>) -> Sequence {
        match self.last(pair) {
            None => Sequence::Deliver,
            Some(last) if open <= last => Sequence::Stale { last },
            Some(last) => {
                let next = last + pair.1.duration();
                if open > next { Sequence::Gap { from: next, to: open } } else { Sequence::Deliver }
            }
        }
    }

    /// Records that the candle opening at `open` is delivered, if it is newer than the last one for `pair`;
    /// `false` (and nothing recorded) when it is stale. A gap does not stop it: the caller decided to deliver.
    pub fn record(&mut self, pair: &Pair, open: DateTime<Utc>) -> bool {
        if matches!(self.check(pair, open), Sequence::Stale { .. }) {
            return false;
        }
        self.last.insert(pair.clone(), open);
        true
    }

    /// Sets where `pair` resumes when the run knows nothing of it yet (the app's store ends at `open`); a pair
    /// already delivered keeps its own last candle, which is at least as recent. Returns whether it was set.
    pub fn resume(&mut self, pair: &Pair, open: DateTime<Utc>) -> bool {
        if self.knows(pair) {
            return false;
        }
        self.last.insert(pair.clone(), open);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone as _};

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn pair(symbol: &str, timeframe: Timeframe) -> Pair {
        (Symbol::normalize(symbol), timeframe)
    }

    /// Feeds `opens` (minutes from `t`) through `check` + `record` and returns what each one got.
    fn run(sequencer: &mut CandleSequencer, pair: &Pair, opens: &[i64]) -> Vec<Sequence> {
        opens
            .iter()
            .map(|m| {
                let outcome = sequencer.check(pair, t(*m));
                let recorded = sequencer.record(pair, t(*m));
                assert_eq!(recorded, !matches!(outcome, Sequence::Stale { .. }), "record agrees with check at {m}");
                outcome
            })
            .collect()
    }

    #[test]
    fn the_first_candle_of_a_pair_is_delivered_whatever_its_time() {
        let mut sequencer = CandleSequencer::new();
        let btc = pair("BTCUSDT", Timeframe::M1);
        assert!(!sequencer.knows(&btc));
        assert_eq!(sequencer.last(&btc), None);
        assert_eq!(sequencer.check(&btc, t(500)), Sequence::Deliver);
        assert!(sequencer.record(&btc, t(500)));
        assert_eq!(sequencer.last(&btc), Some(t(500)));
        assert!(sequencer.knows(&btc));
    }

    #[test]
    fn consecutive_candles_are_delivered_in_order() {
        let mut sequencer = CandleSequencer::new();
        let btc = pair("BTCUSDT", Timeframe::M1);
        assert_eq!(run(&mut sequencer, &btc, &[0, 1, 2, 3]), vec![Sequence::Deliver; 4]);
        assert_eq!(sequencer.last(&btc), Some(t(3)));
    }

    #[test]
    fn duplicates_and_older_candles_are_stale_and_change_nothing() {
        let mut sequencer = CandleSequencer::new();
        let btc = pair("BTCUSDT", Timeframe::M1);
        run(&mut sequencer, &btc, &[0, 1, 2]);
        let outcomes = run(&mut sequencer, &btc, &[2, 1, 0, 2]);
        assert_eq!(outcomes, vec![Sequence::Stale { last: t(2) }; 4]);
        assert_eq!(sequencer.last(&btc), Some(t(2)), "a stale candle never moves the last one back");
        assert_eq!(run(&mut sequencer, &btc, &[3]), vec![Sequence::Deliver]);
    }

    #[test]
    fn out_of_order_frames_collapse_to_each_candle_once_in_order() {
        let mut sequencer = CandleSequencer::new();
        let btc = pair("BTCUSDT", Timeframe::M1);
        let arrivals = [0, 2, 1, 3, 3, 2, 4];
        let delivered: Vec<i64> = arrivals.iter().copied().filter(|m| sequencer.record(&btc, t(*m))).collect();
        assert_eq!(delivered, vec![0, 2, 3, 4], "1 came after 2 was delivered: too late to keep the order");
    }

    #[test]
    fn a_candle_past_the_next_one_names_the_missing_open_times() {
        let mut sequencer = CandleSequencer::new();
        let btc = pair("BTCUSDT", Timeframe::M1);
        run(&mut sequencer, &btc, &[0]);
        assert_eq!(sequencer.check(&btc, t(4)), Sequence::Gap { from: t(1), to: t(4) });
        // Checking records nothing: the feed fills the hole first, then delivers the candle.
        assert_eq!(sequencer.last(&btc), Some(t(0)));
        assert!(sequencer.record(&btc, t(1)));
        assert_eq!(sequencer.check(&btc, t(4)), Sequence::Gap { from: t(2), to: t(4) });
        assert_eq!(run(&mut sequencer, &btc, &[2, 3, 4]), vec![Sequence::Deliver; 3]);
        // A feed that cannot fill the hole still delivers: the gap is reported, not refused.
        assert_eq!(run(&mut sequencer, &btc, &[10]), vec![Sequence::Gap { from: t(5), to: t(10) }]);
        assert_eq!(sequencer.last(&btc), Some(t(10)));
    }

    #[test]
    fn the_step_is_the_pairs_timeframe() {
        let mut sequencer = CandleSequencer::new();
        let hourly = pair("EURUSD", Timeframe::H1);
        run(&mut sequencer, &hourly, &[0]);
        assert_eq!(sequencer.check(&hourly, t(30)), Sequence::Deliver, "misaligned but not past the next one");
        assert_eq!(sequencer.check(&hourly, t(60)), Sequence::Deliver);
        assert_eq!(sequencer.check(&hourly, t(120)), Sequence::Gap { from: t(60), to: t(120) });
    }

    #[test]
    fn pairs_are_independent_including_timeframes_of_one_symbol() {
        let mut sequencer = CandleSequencer::new();
        let (btc, eth, btc5) =
            (pair("BTCUSDT", Timeframe::M1), pair("ETHUSDT", Timeframe::M1), pair("BTCUSDT", Timeframe::M5));
        run(&mut sequencer, &btc, &[0, 1, 2]);
        assert_eq!(sequencer.check(&eth, t(0)), Sequence::Deliver, "BTCUSDT's candles say nothing of ETHUSDT's");
        assert_eq!(sequencer.check(&btc5, t(0)), Sequence::Deliver, "nor of its own 5m series");
        run(&mut sequencer, &eth, &[0]);
        assert_eq!(sequencer.check(&eth, t(2)), Sequence::Gap { from: t(1), to: t(2) });
        assert_eq!(sequencer.check(&btc, t(2)), Sequence::Stale { last: t(2) });
        let mut pairs: Vec<&Pair> = sequencer.pairs().collect();
        pairs.sort();
        let mut expected = vec![&btc, &eth];
        expected.sort();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn resume_points_count_as_delivered() {
        let btc = pair("BTCUSDT", Timeframe::M1);
        let eth = pair("ETHUSDT", Timeframe::M1);
        let mut sequencer = CandleSequencer::resuming(HashMap::from([(btc.clone(), t(5))]));
        assert_eq!(sequencer.last(&btc), Some(t(5)));
        assert_eq!(
            run(&mut sequencer, &btc, &[5, 3, 6]),
            vec![Sequence::Stale { last: t(5) }, Sequence::Stale { last: t(5) }, Sequence::Deliver]
        );
        // A resume point for a pair the run knows nothing of yet is taken...
        assert!(sequencer.resume(&eth, t(8)));
        assert_eq!(sequencer.check(&eth, t(8)), Sequence::Stale { last: t(8) });
        assert_eq!(sequencer.check(&eth, t(9)), Sequence::Deliver);
        // ...but never overrides what the run delivered itself, even when the store claims more.
        assert!(!sequencer.resume(&btc, t(50)));
        assert!(!sequencer.resume(&btc, t(0)));
        assert_eq!(sequencer.last(&btc), Some(t(6)));
    }

    #[test]
    fn a_pair_keeps_its_last_candle_for_when_it_comes_back() {
        let btc = pair("BTCUSDT", Timeframe::M1);
        let mut sequencer = CandleSequencer::new();
        run(&mut sequencer, &btc, &[0, 1]);
        // The feed stops serving the pair and starts it again later: the old candles are not repeated.
        assert!(!sequencer.resume(&btc, t(-100)));
        assert_eq!(sequencer.check(&btc, t(1)), Sequence::Stale { last: t(1) });
        assert_eq!(sequencer.check(&btc, t(5)), Sequence::Gap { from: t(2), to: t(5) });
    }
}
