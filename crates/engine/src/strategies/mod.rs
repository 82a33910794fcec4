//! Strategies that ship with the engine and run through the same [`crate::strategy::Strategy`] interface as
//! the reversal scanner: `sma-cross` is the reference used to check the backtester against other tools.

mod sma_cross;

pub use sma_cross::SmaCross;
