//! `Sma`: the simple moving average of closes, the building block other indicators and strategies reuse.

use super::Indicator;
use super::window::Window;
use crate::Bar;

/// Simple moving average of `close` over `period` bars.
///
/// A running sum would accumulate floating-point drift over millions of bars, so the sum is rebuilt from
/// the window every `period` evictions: still O(1) amortised, and error stays bounded.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    window: Window,
    sum: f64,
    since_resum: usize,
}

impl Sma {
    /// # Panics
    /// If `period` is zero: an average over nothing has no meaning, and this is a programming error.
    pub fn new(period: usize) -> Sma {
        assert!(period > 0, "Sma period must be positive");
        Sma { period, window: Window::new(period), sum: 0.0, since_resum: 0 }
    }

    pub fn period(&self) -> usize {
        self.period
    }

    /// The streaming core on a bare value, so composite indicators can average anything.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        self.sum += x;
        if let Some(old) = self.window.push(x) {
            self.sum -= old;
            self.since_resum += 1;
            if self.since_resum >= self.period {
                self.sum = self.window.iter().sum();
                self.since_resum = 0;
            }
        }
        self.window.is_full().then(|| self.sum / self.period as f64)
    }
}

impl Indicator for Sma {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }

    fn reset(&mut self) {
        self.window.clear();
        self.sum = 0.0;
        self.since_resum = 0;
    }
}
