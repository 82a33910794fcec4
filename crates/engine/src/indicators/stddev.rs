//! `StdDev`: the rolling population standard deviation of closes, and the core Bollinger Bands reuse.
//!
//! Population (divide by `period`), as Stock.Indicators computes it, so band widths match the reference.
//! The variance is slid with Welford's update rather than a sum of squares: prices near 2,000 with a spread
//! of cents would lose most significant digits to cancellation in `E[x²] − E[x]²`.

use super::Indicator;
use super::window::Window;
use crate::Bar;

/// One rolling standard deviation reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StdDevOutput {
    pub mean: f64,
    pub std_dev: f64,
    /// `(close − mean) / std_dev`; `None` when the window is flat (`std_dev == 0`).
    pub z_score: Option<f64>,
}

/// Rolling mean and population standard deviation of `close` over `period` bars.
#[derive(Debug, Clone)]
pub struct StdDev {
    period: usize,
    window: Window,
    mean: f64,
    m2: f64,
    since_resum: usize,
    /// How many of the latest values are equal; a full run means the window is exactly flat, which the
    /// floating-point recurrence could only approximate (and %B would then divide by rounding noise).
    run: usize,
    last: f64,
}

impl StdDev {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> StdDev {
        assert!(period > 0, "StdDev period must be positive");
        StdDev { period, window: Window::new(period), mean: 0.0, m2: 0.0, since_resum: 0, run: 0, last: f64::NAN }
    }

    pub fn period(&self) -> usize {
        self.period
    }

    /// The streaming core on a bare value: `(mean, std_dev)` once the window is full.
    pub fn next(&mut self, x: f64) -> Option<(f64, f64)> {
        self.run = if x == self.last { self.run + 1 } else { 1 };
        self.last = x;
        match self.window.push(x) {
            None => {
                let n = self.window.len() as f64;
                let delta = x - self.mean;
                self.mean += delta / n;
                self.m2 += delta * (x - self.mean);
            }
            Some(old) => {
                let old_mean = self.mean;
                self.mean += (x - old) / self.period as f64;
                self.m2 += (x - old) * (x - self.mean + old - old_mean);
                self.since_resum += 1;
                if self.since_resum >= self.period {
                    self.since_resum = 0;
                    self.recompute();
                }
            }
        }
        if !self.window.is_full() {
            return None;
        }
        if self.run >= self.period {
            return Some((x, 0.0));
        }
        // Rounding can push a tiny variance just below zero; sqrt of that would be NaN.
        Some((self.mean, (self.m2.max(0.0) / self.period as f64).sqrt()))
    }

    /// Two-pass recomputation from the window, to stop drift from the sliding recurrence accumulating.
    fn recompute(&mut self) {
        let n = self.window.len() as f64;
        self.mean = self.window.iter().sum::<f64>() / n;
        self.m2 = self.window.iter().map(|v| (v - self.mean) * (v - self.mean)).sum();
    }
}

impl Indicator for StdDev {
    type Output = StdDevOutput;

    fn update(&mut self, bar: &Bar) -> Option<StdDevOutput> {
        let (mean, std_dev) = self.next(bar.close)?;
        let z_score = (std_dev > 0.0).then(|| (bar.close - mean) / std_dev);
        Some(StdDevOutput { mean, std_dev, z_score })
    }

    fn reset(&mut self) {
        self.window.clear();
        self.mean = 0.0;
        self.m2 = 0.0;
        self.since_resum = 0;
        self.run = 0;
        self.last = f64::NAN;
    }
}
