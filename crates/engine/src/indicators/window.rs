//! `Window`: the fixed-capacity ring buffer behind every rolling indicator.
//!
//! Kept separate so each indicator's file is only its arithmetic; the buffer never reallocates after
//! construction, which is what keeps `update` O(1) and allocation-free.

/// A ring buffer holding the last `capacity` values.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    buf: Vec<f64>,
    cap: usize,
    head: usize,
}

impl Window {
    pub(crate) fn new(capacity: usize) -> Window {
        Window { buf: Vec::with_capacity(capacity), cap: capacity, head: 0 }
    }

    /// Pushes `x`; returns the value it evicted once the window is full.
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        if self.buf.len() < self.cap {
            self.buf.push(x);
            None
        } else {
            let old = std::mem::replace(&mut self.buf[self.head], x);
            self.head = (self.head + 1) % self.cap;
            Some(old)
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() == self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The values oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (a, b) = if self.buf.len() < self.cap { (&self.buf[..], &[][..]) } else { self.buf.split_at(self.head) };
        b.iter().chain(a.iter()).copied()
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
    }
}
