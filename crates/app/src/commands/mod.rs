//! Offline commands: `scan`, `train` and `backtest`, each reading candle files and running the engine
//! exactly as `serve` does, and `parse`, which runs the provider-message parser on text.

pub mod backtest;
pub mod candles;
pub mod model;
pub mod parse;
pub mod report;
pub mod scan;
pub mod train;
