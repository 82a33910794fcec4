//! What stage 2 sees of a candidate. Directional features are multiplied by the candidate's direction so
//! that "stretched against the trade" means the same number for a long and a short, and one model serves
//! both sides. Distances are in ATR so the features mean the same thing on EURUSD, gold and bitcoin.

use super::detector::{Candidate, Triggers};
use domain::Side;

pub const FEATURE_NAMES: [&str; 20] = [
    "rsi_stretch",
    "band_position",
    "band_width_atr",
    "volatility_regime",
    "ema_distance_atr",
    "ema_slope_atr",
    "adx",
    "stochastic_stretch",
    "macd_histogram_atr",
    "body_fraction",
    "rejection_wick_fraction",
    "swing_distance_atr",
    "prior_move_atr",
    "hour_sin",
    "hour_cos",
    "is_long",
    "trigger_engulfing",
    "trigger_pin_bar",
    "trigger_swing_failure",
    "trigger_divergence",
];

pub const FEATURE_COUNT: usize = FEATURE_NAMES.len();

pub type Features = [f64; FEATURE_COUNT];

/// The feature vector of a candidate. `time` is the signal bar's open time, for the session hour.
pub fn features(c: &Candidate) -> Features {
    let s = &c.state;
    let dir = if c.side == Side::Long { 1.0 } else { -1.0 };
    let atr = s.atr;
    let band = s.bb_upper - s.bb_lower;
    let hour = ((c.time.rem_euclid(86_400)) as f64) / 3600.0;
    let angle = hour / 24.0 * std::f64::consts::TAU;
    let flag = |f: u8| if c.triggers.has(f) { 1.0 } else { 0.0 };
    [
        // Positive when stretched against the trade: low RSI for a long, high for a short.
        (50.0 - s.rsi) * dir / 50.0,
        if band > 0.0 { (0.5 - (c.entry - s.bb_lower) / band) * dir } else { 0.0 },
        band / atr,
        if s.atr_mean > 0.0 { (atr / s.atr_mean).ln() } else { 0.0 },
        (c.entry - s.ema) * dir / atr,
        s.ema_slope * dir,
        s.adx / 100.0,
        (50.0 - s.stoch_k) * dir / 50.0,
        s.macd_histogram * dir / atr,
        c.body_fraction,
        c.rejection_wick_fraction,
        c.swing_distance_atr,
        c.prior_move_atr,
        angle.sin(),
        angle.cos(),
        if c.side == Side::Long { 1.0 } else { 0.0 },
        flag(Triggers::ENGULFING),
        flag(Triggers::PIN_BAR),
        flag(Triggers::SWING_FAILURE),
        flag(Triggers::DIVERGENCE),
    ]
}
