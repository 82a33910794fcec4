//! `Wma`: the linearly weighted moving average of closes (newest weight `period`, oldest weight 1).
//!
//! Kept O(1) with two running sums: when the window slides every weight drops by one, which is exactly
//! subtracting the plain sum, so the weighted sum never needs a rescan.

use super::Indicator;
use super::window::Window;
use crate::Bar;

/// Linearly weighted moving average of `close` over `period` bars.
#[derive(Debug, Clone)]
pub struct Wma {
    period: usize,
    window: Window,
    sum: f64,
    weighted: f64,
    since_resum: usize,
}

impl Wma {
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: usize) -> Wma {
        assert!(period > 0, "Wma period must be positive");
        Wma { period, window: Window::new(period), sum: 0.0, weighted: 0.0, since_resum: 0 }
    }

    pub fn period(&self) -> usize {
        self.period
    }

    pub fn next(&mut self, x: f64) -> Option<f64> {
        let n = self.period as f64;
        match self.window.push(x) {
            None => {
                // Filling: the k-th value gets weight k, which becomes the right weight once full.
                self.sum += x;
                self.weighted += self.window.len() as f64 * x;
            }
            Some(old) => {
                self.weighted += n * x - self.sum;
                self.sum += x - old;
                self.since_resum += 1;
                // Rebuild both sums once per window length so rounding drift cannot accumulate unboundedly.
                if self.since_resum >= self.period {
                    self.since_resum = 0;
                    self.sum = self.window.iter().sum();
                    self.weighted = self.window.iter().zip(1..).map(|(v, w)| v * f64::from(w)).sum();
                }
            }
        }
        self.window.is_full().then(|| self.weighted / (n * (n + 1.0) / 2.0))
    }
}

impl Indicator for Wma {
    type Output = f64;

    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }

    fn reset(&mut self) {
        self.window.clear();
        self.sum = 0.0;
        self.weighted = 0.0;
        self.since_resum = 0;
    }
}
