//! `RollingMax` / `RollingMin`: windowed extremes in O(1) amortised per value.
//!
//! A monotonic deque keeps only the values that can still become the extreme: anything dominated by a newer
//! value is dropped on arrival, anything older than the window is dropped from the front. Rescanning the
//! window instead would make Stochastic O(period) per bar.

use std::collections::VecDeque;

/// The extreme of the last `period` values: the largest when `MAX`, else the smallest.
#[derive(Debug, Clone)]
pub(crate) struct Extreme<const MAX: bool> {
    period: u64,
    seen: u64,
    deque: VecDeque<(u64, f64)>,
}

/// The largest of the last `period` values.
pub(crate) type RollingMax = Extreme<true>;
/// The smallest of the last `period` values.
pub(crate) type RollingMin = Extreme<false>;

impl<const MAX: bool> Extreme<MAX> {
    pub(crate) fn new(period: usize) -> Self {
        assert!(period > 0, "rolling extreme period must be positive");
        Extreme { period: period as u64, seen: 0, deque: VecDeque::with_capacity(period + 1) }
    }

    /// Pushes `x`; returns the extreme once `period` values have been seen.
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let seq = self.seen;
        self.seen += 1;
        // Ties evict the older entry too: the newer one stays in the window longer and has the same value.
        while self.deque.back().is_some_and(|&(_, b)| if MAX { b <= x } else { b >= x }) {
            self.deque.pop_back();
        }
        self.deque.push_back((seq, x));
        while self.deque.front().is_some_and(|&(i, _)| i + self.period <= seq) {
            self.deque.pop_front();
        }
        // NaN never dominates, so a NaN input can leave the deque empty; report it rather than panic.
        (self.seen >= self.period).then(|| self.deque.front().map_or(f64::NAN, |&(_, v)| v))
    }

    pub(crate) fn clear(&mut self) {
        self.seen = 0;
        self.deque.clear();
    }
}
