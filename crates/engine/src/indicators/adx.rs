//! `Adx`: Wilder's Average Directional Index with the +DI / −DI lines it is built from.
//!
//! Follows Stock.Indicators step by step: true range and directional movement are Wilder-summed (seeded with
//! the plain sum of the first `period` values, bars 1..=period), so +DI/−DI/DX appear on bar `period`; the
//! ADX is seeded with the mean of the first `period` DX values and appears on bar `2·period − 1`. The DI
//! lines are useful before the ADX exists, so the output is `Some` from bar `period` with `adx` optional.

use super::Indicator;
use super::window::Window;
use crate::Bar;

/// One ADX reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdxOutput {
    /// +DI, in 0..=100.
    pub plus_di: f64,
    /// −DI, in 0..=100.
    pub minus_di: f64,
    /// The directional index `100·|+DI − −DI| / (+DI + −DI)`, unsmoothed.
    pub dx: f64,
    /// The ADX; `None` until `period` DX values have been averaged.
    pub adx: Option<f64>,
    /// ADX rating: the mean of this ADX and the one `period` bars earlier; `None` until that exists.
    pub adxr: Option<f64>,
}

/// Average Directional Index over `period` bars (14 by default).
///
/// A window without any range (all bars identical) has no direction: +DI, −DI and DX read 0 there, where
/// Stock.Indicators reports null for that bar.
#[derive(Debug, Clone)]
pub struct Adx {
    period: usize,
    prev: Option<(f64, f64, f64)>,
    seen: usize,
    trs: f64,
    pdm: f64,
    mdm: f64,
    dx_seen: usize,
    adx: f64,
    past_adx: Window,
}

impl Adx {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> Adx {
        assert!(period > 0, "Adx period must be positive");
        Adx {
            period,
            prev: None,
            seen: 0,
            trs: 0.0,
            pdm: 0.0,
            mdm: 0.0,
            dx_seen: 0,
            adx: 0.0,
            past_adx: Window::new(period),
        }
    }

    pub fn period(&self) -> usize {
        self.period
    }
}

impl Default for Adx {
    fn default() -> Self {
        Adx::new(14)
    }
}

impl Indicator for Adx {
    type Output = AdxOutput;

    fn update(&mut self, bar: &Bar) -> Option<AdxOutput> {
        let (ph, pl, pc) = self.prev.replace((bar.high, bar.low, bar.close))?;
        let tr = (bar.high - bar.low).max((bar.high - pc).abs()).max((bar.low - pc).abs());
        let up = bar.high - ph;
        let down = pl - bar.low;
        let pdm1 = if up > down { up.max(0.0) } else { 0.0 };
        let mdm1 = if down > up { down.max(0.0) } else { 0.0 };

        let n = self.period as f64;
        self.seen += 1;
        if self.seen <= self.period {
            self.trs += tr;
            self.pdm += pdm1;
            self.mdm += mdm1;
            if self.seen < self.period {
                return None;
            }
        } else {
            self.trs = self.trs - self.trs / n + tr;
            self.pdm = self.pdm - self.pdm / n + pdm1;
            self.mdm = self.mdm - self.mdm / n + mdm1;
        }

        let (plus_di, minus_di) =
            if self.trs > 0.0 { (100.0 * self.pdm / self.trs, 100.0 * self.mdm / self.trs) } else { (0.0, 0.0) };
        let sum = plus_di + minus_di;
        let dx = if plus_di == minus_di || sum == 0.0 { 0.0 } else { 100.0 * (plus_di - minus_di).abs() / sum };

        self.dx_seen += 1;
        let adx = if self.dx_seen < self.period {
            self.adx += dx;
            None
        } else {
            self.adx = if self.dx_seen == self.period { (self.adx + dx) / n } else { (self.adx * (n - 1.0) + dx) / n };
            Some(self.adx)
        };
        let adxr = adx.and_then(|a| self.past_adx.push(a).map(|old| (a + old) / 2.0));
        Some(AdxOutput { plus_di, minus_di, dx, adx, adxr })
    }

    fn reset(&mut self) {
        *self = Adx::new(self.period);
    }
}
