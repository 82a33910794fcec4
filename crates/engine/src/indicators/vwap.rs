//! `Vwap`: the volume-weighted average of the typical price `(high + low + close) / 3`.
//!
//! Cumulative from the first bar by default, as Stock.Indicators computes it; intraday users want it to
//! restart every session, so it can also be anchored to fixed-length sessions (e.g. UTC days) or restarted
//! by hand with `start_session`.

use super::Indicator;
use crate::Bar;

/// When a `Vwap` starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VwapAnchor {
    /// Never: one running average from the first bar.
    Cumulative,
    /// At every multiple of `length` seconds after `offset` seconds past the Unix epoch. Daily sessions
    /// opening at 09:30 New York winter time (14:30 UTC) are `{ length: 86_400, offset: 14 * 3600 + 30 * 60 }`.
    Session { length: i64, offset: i64 },
}

/// Volume-weighted average price. `None` while the session has traded no volume.
#[derive(Debug, Clone)]
pub struct Vwap {
    anchor: VwapAnchor,
    session: Option<i64>,
    volume: f64,
    volume_price: f64,
}

impl Vwap {
    /// Cumulative from the first bar.
    pub fn new() -> Vwap {
        Vwap::anchored(VwapAnchor::Cumulative)
    }

    /// Restarts at each UTC day boundary shifted by `utc_offset` seconds (e.g. `-5 * 3600` for midnight in
    /// New York winter time).
    pub fn daily(utc_offset: i64) -> Vwap {
        Vwap::anchored(VwapAnchor::Session { length: 86_400, offset: -utc_offset })
    }

    /// # Panics
    /// If a session length is not positive.
    pub fn anchored(anchor: VwapAnchor) -> Vwap {
        if let VwapAnchor::Session { length, .. } = anchor {
            assert!(length > 0, "Vwap session length must be positive");
        }
        Vwap { anchor, session: None, volume: 0.0, volume_price: 0.0 }
    }

    /// Starts a new session at the next bar, whatever the anchor says.
    pub fn start_session(&mut self) {
        self.volume = 0.0;
        self.volume_price = 0.0;
    }
}

impl Default for Vwap {
    fn default() -> Self {
        Vwap::new()
    }
}

impl Indicator for Vwap {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        if let VwapAnchor::Session { length, offset } = self.anchor {
            // `time` is the bar's open time, so a bar belongs to the session it opened in.
            let session = (bar.time - offset).div_euclid(length);
            if self.session.replace(session) != Some(session) {
                self.start_session();
            }
        }
        self.volume += bar.volume;
        self.volume_price += bar.volume * (bar.high + bar.low + bar.close) / 3.0;
        (self.volume != 0.0).then(|| self.volume_price / self.volume)
    }

    fn reset(&mut self) {
        self.session = None;
        self.start_session();
    }
}
