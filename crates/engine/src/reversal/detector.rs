//! Stage 1: rule-based reversal candidates at candle close.
//!
//! A long candidate needs downside exhaustion and a reversal trigger on the bar that just closed
//! (a short candidate is the mirror image):
//!
//! - exhaustion, at least one of: RSI(14) at or below 30 on one of the last three bars; a low below the
//!   lower Bollinger band (20, 2) on this bar or the one before;
//! - trigger, at least one of:
//!   - bullish engulfing: the previous bar fell, this one rose, and its body covers the previous body;
//!   - pin bar (hammer): the lower wick is at least twice the body and 60% of the range, and the bar
//!     closes in the upper half of its range;
//!   - swing failure: the bar trades below the lowest low of the previous 20 bars but closes back above it;
//!   - bullish divergence: this bar makes the lowest low of the last five bars, below the lowest low of
//!     the window 5–30 bars back, while RSI is higher than it was at that earlier low (which was ≤ 40).
//!
//! Levels: entry at the close; stop loss 0.2 ATR beyond the lowest low of the last 10 bars, but never
//! nearer than 1 ATR nor further than 3 ATR from the entry; take profit at `reward_risk` (default 2) times
//! the risk. A side does not fire again within 3 bars of its last candidate.

use crate::Bar;
use crate::indicators::{Adx, Atr, BollingerBands, Ema, Indicator, Macd, Rsi, Stochastic};
use domain::Side;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The knobs of stage 1; stored in the model file so serving uses exactly what training used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorParams {
    pub rsi_period: usize,
    pub rsi_low: f64,
    pub rsi_high: f64,
    pub bb_period: usize,
    pub bb_width: f64,
    pub atr_period: usize,
    pub swing_lookback: usize,
    pub stop_lookback: usize,
    pub stop_buffer_atr: f64,
    pub min_stop_atr: f64,
    pub max_stop_atr: f64,
    pub reward_risk: f64,
    pub min_bars_between: usize,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            rsi_period: 14,
            rsi_low: 30.0,
            rsi_high: 70.0,
            bb_period: 20,
            bb_width: 2.0,
            atr_period: 14,
            swing_lookback: 20,
            stop_lookback: 10,
            stop_buffer_atr: 0.2,
            min_stop_atr: 1.0,
            max_stop_atr: 3.0,
            reward_risk: 2.0,
            min_bars_between: 3,
        }
    }
}

/// Which stage-1 conditions held, as bit flags (stable: they are stored in model files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Triggers(pub u8);

impl Triggers {
    pub const RSI_EXTREME: u8 = 1;
    pub const OUTSIDE_BAND: u8 = 2;
    pub const ENGULFING: u8 = 4;
    pub const PIN_BAR: u8 = 8;
    pub const SWING_FAILURE: u8 = 16;
    pub const DIVERGENCE: u8 = 32;

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::RSI_EXTREME, "rsi_extreme"),
            (Self::OUTSIDE_BAND, "outside_band"),
            (Self::ENGULFING, "engulfing"),
            (Self::PIN_BAR, "pin_bar"),
            (Self::SWING_FAILURE, "swing_failure"),
            (Self::DIVERGENCE, "divergence"),
        ]
        .into_iter()
        .filter(|(f, _)| self.has(*f))
        .map(|(_, n)| n)
        .collect()
    }
}

/// The indicator state at a bar's close, kept for features and for the Details view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndicatorState {
    pub rsi: f64,
    pub bb_upper: f64,
    pub bb_middle: f64,
    pub bb_lower: f64,
    pub atr: f64,
    pub atr_mean: f64,
    pub ema: f64,
    pub ema_slope: f64,
    pub adx: f64,
    pub stoch_k: f64,
    pub macd_histogram: f64,
}

/// A stage-1 reversal candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub side: Side,
    /// Open time of the signal bar (Unix seconds).
    pub time: i64,
    pub entry: f64,
    pub stop_loss: f64,
    pub take_profit: f64,
    pub triggers: Triggers,
    pub state: IndicatorState,
    /// Distance from the close to the 20-bar swing extreme on the candidate's side, in ATR.
    pub swing_distance_atr: f64,
    /// Move over the last 10 bars in ATR, positive when it was against the candidate (the move it reverses).
    pub prior_move_atr: f64,
    /// The signal bar's shape: body, and the wick on the candidate's side, as fractions of its range.
    pub body_fraction: f64,
    pub rejection_wick_fraction: f64,
}

const HISTORY: usize = 40;
const EMA_PERIOD: usize = 50;
const EMA_SLOPE_BARS: usize = 5;
const ATR_MEAN_BARS: usize = 100;

#[derive(Debug, Clone, Copy, Default)]
struct Past {
    bar: Bar,
    rsi: f64,
    bb_upper: f64,
    bb_lower: f64,
    ema: f64,
}

/// The streaming stage-1 detector for one (instrument, timeframe): O(1) per bar plus a fixed scan of the
/// last 40 bars when the exhaustion filter passes.
#[derive(Debug, Clone)]
pub struct ReversalDetector {
    params: DetectorParams,
    rsi: Rsi,
    bb: BollingerBands,
    atr: Atr,
    ema: Ema,
    adx: Adx,
    stoch: Stochastic,
    macd: Macd,
    atr_sum: f64,
    atrs: VecDeque<f64>,
    history: VecDeque<Past>,
    bars_since: [usize; 2],
}

impl ReversalDetector {
    pub fn new(params: DetectorParams) -> Self {
        ReversalDetector {
            params,
            rsi: Rsi::new(params.rsi_period),
            bb: BollingerBands::new(params.bb_period, params.bb_width),
            atr: Atr::new(params.atr_period),
            ema: Ema::new(EMA_PERIOD),
            adx: Adx::new(14),
            stoch: Stochastic::new(14, 3, 3),
            macd: Macd::new(12, 26, 9),
            atr_sum: 0.0,
            atrs: VecDeque::with_capacity(ATR_MEAN_BARS + 1),
            history: VecDeque::with_capacity(HISTORY + 1),
            bars_since: [usize::MAX; 2],
        }
    }

    pub fn params(&self) -> &DetectorParams {
        &self.params
    }

    /// Feeds one closed bar; returns a candidate when the bar completes a reversal setup.
    pub fn update(&mut self, bar: &Bar) -> Option<Candidate> {
        // Every indicator sees every bar, warm or not, so their state never depends on earlier answers.
        let rsi = self.rsi.update(bar);
        let bb = self.bb.update(bar);
        let atr = self.atr.update(bar);
        let ema = self.ema.update(bar);
        let adx = self.adx.update(bar);
        let stoch = self.stoch.update(bar);
        let macd = self.macd.update(bar);
        for b in &mut self.bars_since {
            *b = b.saturating_add(1);
        }
        if let Some(a) = atr {
            self.atrs.push_back(a);
            self.atr_sum += a;
            if self.atrs.len() > ATR_MEAN_BARS {
                self.atr_sum -= self.atrs.pop_front().unwrap_or(0.0);
            }
        }
        let ready = (|| Some((rsi?, bb?, atr?, ema?, adx?.adx?, stoch?.k, macd?.histogram?)))();
        let past = Past {
            bar: *bar,
            rsi: rsi.unwrap_or(f64::NAN),
            bb_upper: bb.map_or(f64::NAN, |b| b.upper),
            bb_lower: bb.map_or(f64::NAN, |b| b.lower),
            ema: ema.unwrap_or(f64::NAN),
        };
        let candidate = match ready {
            Some((rsi, bb, atr, ema, adx, stoch_k, macd_histogram))
                if self.history.len() >= HISTORY && atr > 0.0 && atr.is_finite() =>
            {
                let ema_then = self.history[self.history.len() - EMA_SLOPE_BARS].ema;
                let state = IndicatorState {
                    rsi,
                    bb_upper: bb.upper,
                    bb_middle: bb.middle,
                    bb_lower: bb.lower,
                    atr,
                    atr_mean: self.atr_sum / self.atrs.len().max(1) as f64,
                    ema,
                    ema_slope: (ema - ema_then) / atr,
                    adx,
                    stoch_k,
                    macd_histogram,
                };
                self.detect(&past, state)
            }
            _ => None,
        };
        self.history.push_back(past);
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        candidate
    }

    fn detect(&mut self, now: &Past, state: IndicatorState) -> Option<Candidate> {
        [Side::Long, Side::Short].into_iter().find_map(|side| {
            let slot = usize::from(side == Side::Short);
            if self.bars_since[slot] < self.params.min_bars_between {
                return None;
            }
            let candidate = self.detect_side(side, now, state)?;
            self.bars_since[slot] = 0;
            Some(candidate)
        })
    }

    fn detect_side(&self, side: Side, now: &Past, state: IndicatorState) -> Option<Candidate> {
        let p = &self.params;
        let h = &self.history;
        let n = h.len();
        let bar = now.bar;
        // Mirror prices for shorts so every rule below is written once, for longs.
        let m = |x: f64| if side == Side::Long { x } else { -x };
        let (open, close) = (m(bar.open), m(bar.close));
        let (high, low) = if side == Side::Long { (bar.high, bar.low) } else { (-bar.low, -bar.high) };
        let rsi_of = |r: f64| if side == Side::Long { r } else { 100.0 - r };
        let lower_band = |b: &Past| if side == Side::Long { b.bb_lower } else { -b.bb_upper };

        let mut flags = 0u8;
        let rsi_hit = rsi_of(state.rsi) <= p.rsi_low || h.range(n - 2..).any(|b| rsi_of(b.rsi) <= p.rsi_low);
        if rsi_hit {
            flags |= Triggers::RSI_EXTREME;
        }
        let prev = &h[n - 1];
        let band_now = if side == Side::Long { state.bb_lower } else { -state.bb_upper };
        let prev_low = if side == Side::Long { prev.bar.low } else { -prev.bar.high };
        if low < band_now || prev_low < lower_band(prev) {
            flags |= Triggers::OUTSIDE_BAND;
        }
        if flags == 0 {
            return None;
        }

        let (prev_open, prev_close) = (m(prev.bar.open), m(prev.bar.close));
        if prev_close < prev_open && close > open && close >= prev_open && open <= prev_close {
            flags |= Triggers::ENGULFING;
        }
        let range = high - low;
        let body = (close - open).abs();
        let rejection_wick = open.min(close) - low;
        if range > 0.0 && rejection_wick >= 2.0 * body && rejection_wick >= 0.6 * range && close >= low + 0.5 * range {
            flags |= Triggers::PIN_BAR;
        }
        let low_of = |b: &Past| if side == Side::Long { b.bar.low } else { -b.bar.high };
        let swing_low = h.range(n - p.swing_lookback.min(n)..).map(low_of).fold(f64::INFINITY, f64::min);
        if low < swing_low && close > swing_low {
            flags |= Triggers::SWING_FAILURE;
        }
        let recent_low = h.range(n - 4..).map(low_of).fold(f64::INFINITY, f64::min);
        if low <= recent_low
            && let Some(earlier) = h.range(n.saturating_sub(30)..n - 4).min_by(|a, b| low_of(a).total_cmp(&low_of(b)))
            && low < low_of(earlier)
            && rsi_of(earlier.rsi) <= 40.0
            && rsi_of(state.rsi) > rsi_of(earlier.rsi)
        {
            flags |= Triggers::DIVERGENCE;
        }
        if flags & !(Triggers::RSI_EXTREME | Triggers::OUTSIDE_BAND) == 0 {
            return None;
        }

        let atr = state.atr;
        let stop_low = h.range(n - (p.stop_lookback - 1).min(n)..).map(low_of).fold(low, f64::min);
        let risk = (close - (stop_low - p.stop_buffer_atr * atr)).clamp(p.min_stop_atr * atr, p.max_stop_atr * atr);
        let entry = bar.close;
        let dir = if side == Side::Long { 1.0 } else { -1.0 };
        let ten_back = h[n - 10].bar.close;
        Some(Candidate {
            side,
            time: bar.time,
            entry,
            stop_loss: entry - dir * risk,
            take_profit: entry + dir * p.reward_risk * risk,
            triggers: Triggers(flags),
            state,
            swing_distance_atr: (close - swing_low.min(low)) / atr,
            prior_move_atr: (m(ten_back) - close) / atr,
            body_fraction: if range > 0.0 { (close - open) / range } else { 0.0 },
            rejection_wick_fraction: if range > 0.0 { rejection_wick / range } else { 0.0 },
        })
    }
}
