//! What a strategy is to the backtester and the live scanner: something that sees each closed bar once,
//! in order, and says what to do at the next bar's open.

use domain::Side;

/// A request to open a position at the next bar's open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intent {
    pub side: Side,
    /// Absolute price levels, decided at the signal bar's close.
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    /// Calibrated probability that the take profit comes before the stop loss, where the strategy has one.
    pub confidence: Option<f64>,
}

/// What a strategy wants after seeing a bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Nothing to do.
    Hold,
    /// Open a position at the next open if flat; ignored while a position is open.
    Enter(Intent),
    /// Close any open position at the next open and open this one instead (stop-and-reverse systems).
    Reverse(Intent),
    /// Close any open position at the next open.
    Exit,
}

pub trait Strategy {
    fn name(&self) -> &str;

    /// Sees one closed bar. `position` is the side of the position open at this bar's close, if any.
    fn on_bar(&mut self, bar: &crate::Bar, position: Option<Side>) -> Action;
}
