//! Resampling candles into a coarser timeframe, over a whole series or one candle at a time.
//!
//! Buckets are aligned to the Unix epoch ([`Timeframe::bucket_start`]: 4h bars open at 00:00, 04:00, …
//! UTC, days at 00:00 UTC), so every step of the chain 1m → 5m → 15m → 30m → 1h → 4h → 1d nests exactly in
//! the next and resampling straight to 1h gives the same bars as going through every step. A coarse bar
//! takes the first open, the highest high, the lowest low, the last close and the summed volume of the
//! finer bars inside it. Input must be in time order, as the loaders guarantee. Missing finer bars simply
//! leave a coarse bar with fewer parts; a bucket with none is not invented.

use domain::{Candle, Timeframe};

/// Aggregates `candles` (in time order, any finer timeframe) into `to` buckets. The last bucket is
/// included even if the input stops before it ends, as charting tools do.
pub fn resample(candles: &[Candle], to: Timeframe) -> Vec<Candle> {
    let mut resampler = Resampler::new(to);
    let mut out = Vec::with_capacity(candles.len() / 2 + 1);
    for candle in candles {
        out.extend(resampler.push(candle));
    }
    out.extend(resampler.flush());
    out
}

/// Builds coarser candles as finer ones arrive, for live feeds and replays.
///
/// Made with [`Resampler::new`], a bucket is emitted when a candle of a later bucket arrives (or on
/// [`Resampler::flush`]). Made with [`Resampler::with_source`], it also knows the finer timeframe and emits a
/// bucket as soon as the candle closing it arrives, so an hourly bar built from minutes leaves at the top
/// of the hour rather than a minute (or a weekend) later.
#[derive(Debug, Clone)]
pub struct Resampler {
    to: Timeframe,
    source: Option<Timeframe>,
    current: Option<Candle>,
}

impl Resampler {
    pub fn new(to: Timeframe) -> Self {
        Resampler { to, source: None, current: None }
    }

    pub fn with_source(from: Timeframe, to: Timeframe) -> Self {
        Resampler { to, source: Some(from), current: None }
    }

    pub fn timeframe(&self) -> Timeframe {
        self.to
    }

    /// The bucket being built, not yet complete.
    pub fn pending(&self) -> Option<&Candle> {
        self.current.as_ref()
    }

    /// Adds the next finer candle; yields the buckets it completes (at most two: the previous one, and with
    /// a known source timeframe, this candle's own bucket when the candle is its last part).
    pub fn push(&mut self, candle: &Candle) -> Emitted {
        let bucket = self.to.bucket_start(candle.time);
        let mut emitted = Emitted::default();
        match &mut self.current {
            Some(current) if current.time == bucket => {
                current.high = current.high.max(candle.high);
                current.low = current.low.min(candle.low);
                current.close = candle.close;
                current.volume += candle.volume;
            }
            _ => {
                emitted.first = self.current.replace(Candle { time: bucket, ..candle.clone() });
            }
        }
        if let Some(from) = self.source
            && candle.time + from.duration() >= bucket + self.to.duration()
        {
            emitted.second = self.current.take();
        }
        emitted
    }

    /// Ends the input: yields the bucket in progress, complete or not.
    pub fn flush(&mut self) -> Option<Candle> {
        self.current.take()
    }
}

/// The candles one [`Resampler::push`] completed, oldest first.
#[derive(Debug, Default)]
#[must_use = "a completed candle that is not used is lost"]
pub struct Emitted {
    first: Option<Candle>,
    second: Option<Candle>,
}

impl Iterator for Emitted {
    type Item = Candle;

    fn next(&mut self) -> Option<Candle> {
        self.first.take().or_else(|| self.second.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 2, h, m, 0).unwrap()
    }

    fn bar(time: DateTime<Utc>, o: Decimal, h: Decimal, l: Decimal, c: Decimal, v: Decimal) -> Candle {
        Candle { time, open: o, high: h, low: l, close: c, volume: v }
    }

    #[test]
    fn aggregates_ohlcv() {
        let m5 = [
            bar(at(9, 0), dec!(10), dec!(12), dec!(9), dec!(11), dec!(1)),
            bar(at(9, 5), dec!(11), dec!(15), dec!(10), dec!(14), dec!(2)),
            bar(at(9, 10), dec!(14), dec!(14), dec!(8), dec!(9), dec!(3)),
            bar(at(9, 15), dec!(9), dec!(10), dec!(9), dec!(10), dec!(4)),
        ];
        assert_eq!(
            resample(&m5, Timeframe::M15),
            vec![
                bar(at(9, 0), dec!(10), dec!(15), dec!(8), dec!(9), dec!(6)),
                bar(at(9, 15), dec!(9), dec!(10), dec!(9), dec!(10), dec!(4)),
            ]
        );
    }

    #[test]
    fn buckets_are_epoch_aligned_even_when_data_starts_mid_bucket() {
        let m1 = [
            bar(at(1, 59), dec!(1), dec!(1), dec!(1), dec!(1), dec!(1)),
            bar(at(2, 0), dec!(2), dec!(2), dec!(2), dec!(2), dec!(1)),
            bar(at(5, 30), dec!(3), dec!(3), dec!(3), dec!(3), dec!(1)),
        ];
        let h4: Vec<_> = resample(&m1, Timeframe::H4).iter().map(|c| c.time).collect();
        assert_eq!(h4, vec![at(0, 0), at(4, 0)]);
    }

    #[test]
    fn lazy_resampler_waits_for_the_next_bucket_and_eager_one_does_not() {
        let m1: Vec<_> = (0..10).map(|m| bar(at(9, m), dec!(1), dec!(2), dec!(1), dec!(2), dec!(1))).collect();
        let mut lazy = Resampler::new(Timeframe::M5);
        let mut eager = Resampler::with_source(Timeframe::M1, Timeframe::M5);
        for (i, c) in m1.iter().enumerate() {
            let lazy_out: Vec<_> = lazy.push(c).collect();
            let eager_out: Vec<_> = eager.push(c).collect();
            assert_eq!(lazy_out.len(), usize::from(i == 5), "minute {i}");
            assert_eq!(eager_out.len(), usize::from(i == 4 || i == 9), "minute {i}");
        }
        assert_eq!(lazy.flush().unwrap().time, at(9, 5));
        assert!(eager.flush().is_none());
    }

    #[test]
    fn eager_resampler_emits_two_when_a_gap_ends_on_a_bucket_close() {
        let mut r = Resampler::with_source(Timeframe::M1, Timeframe::M5);
        let c = |m| bar(at(9, m), dec!(1), dec!(1), dec!(1), dec!(1), dec!(1));
        assert_eq!(r.push(&c(0)).count(), 0);
        let out: Vec<_> = r.push(&c(9)).map(|c| c.time).collect();
        assert_eq!(out, vec![at(9, 0), at(9, 5)]);
    }

    /// Minute candles with random gaps, starting anywhere within a few days of 2024-01-01.
    fn minute_series() -> impl Strategy<Value = Vec<Candle>> {
        let step = prop_oneof![8 => Just(1i64), 2 => 2i64..30, 1 => 30i64..3000];
        let bar = (step, 1000i64..2000, 1000i64..2000, 0i64..50, 0i64..50, 0i64..1000);
        (0i64..4 * 1440, prop::collection::vec(bar, 1..1500)).prop_map(|(start, bars)| {
            let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp() / 60 + start;
            let mut minute = base;
            bars.into_iter()
                .map(|(step, o, c, up, down, v)| {
                    minute += step;
                    let (o, c) = (Decimal::new(o, 2), Decimal::new(c, 2));
                    Candle {
                        time: Utc.timestamp_opt(minute * 60, 0).unwrap(),
                        open: o,
                        high: o.max(c) + Decimal::new(up, 2),
                        low: o.min(c) - Decimal::new(down, 2),
                        close: c,
                        volume: Decimal::new(v, 1),
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn straight_equals_stepwise_for_every_target(m1 in minute_series()) {
            let mut stepwise = m1.clone();
            let mut tf = Timeframe::M1;
            while let Some(next) = tf.coarser() {
                stepwise = resample(&stepwise, next);
                prop_assert_eq!(&stepwise, &resample(&m1, next), "{}", next);
                tf = next;
            }
        }

        #[test]
        fn coarse_bars_are_valid_aligned_and_keep_volume(m1 in minute_series()) {
            let total: Decimal = m1.iter().map(|c| c.volume).sum();
            for tf in Timeframe::ALL {
                let out = resample(&m1, tf);
                prop_assert_eq!(out.iter().map(|c| c.volume).sum::<Decimal>(), total);
                for pair in out.windows(2) {
                    prop_assert!(pair[0].time < pair[1].time);
                }
                for c in &out {
                    prop_assert!(c.validate().is_ok());
                    prop_assert_eq!(tf.bucket_start(c.time), c.time);
                }
                prop_assert_eq!(out.first().map(|c| c.open), m1.first().map(|c| c.open));
                prop_assert_eq!(out.last().map(|c| c.close), m1.last().map(|c| c.close));
            }
        }

        #[test]
        fn eager_streaming_matches_batch_and_emits_on_the_closing_candle(m1 in minute_series()) {
            for tf in [Timeframe::M5, Timeframe::H1, Timeframe::D1] {
                let mut r = Resampler::with_source(Timeframe::M1, tf);
                let mut out = Vec::new();
                for c in &m1 {
                    for done in r.push(c) {
                        // Emitted when its bucket is over: this candle closes it or lies beyond it.
                        prop_assert!(c.time + Timeframe::M1.duration() >= done.time + tf.duration());
                        out.push(done);
                    }
                }
                out.extend(r.flush());
                prop_assert_eq!(out, resample(&m1, tf));
            }
        }
    }
}
