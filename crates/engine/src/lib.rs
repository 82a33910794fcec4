//! The engine: everything that turns candles into trading decisions, with no I/O so the same code runs
//! live, in backtests and in benchmarks.
//!
//! - `indicators`: streaming (O(1) per bar) and batch forms of the classic indicators.
//! - `strategy`: the interface a strategy implements, and the reference `sma-cross` strategy.
//! - `backtest`: the event-driven backtester that feeds bars to a strategy exactly as live scanning does.
//! - `reversal`: stage-1 reversal candidates, features, the stage-2 model and the scanner built from them.
//! - `snapshot`: the indicator state a signal's Details shows, at the signal's candle.
//!
//! Prices here are `f64`: indicators and model features are statistics, not money. Levels that leave the
//! engine are converted to `domain::Price` at the instrument's precision.

pub mod backtest;
pub mod bar;
pub mod indicators;
pub mod reversal;
pub mod snapshot;
pub mod strategies;
pub mod strategy;

pub use bar::Bar;
pub use snapshot::{IndicatorState, indicator_state};
