//! Where the paper broker reads prices: the latest quote per symbol, fed from the market feed's ticks.

use domain::{Price, Symbol, Tick};
use std::collections::HashMap;
use std::sync::RwLock;

/// The latest price of a symbol: both sides where the feed has them, or only a mid (candle closes, last
/// trade), to which the paper broker adds its configured spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    BidAsk { bid: Price, ask: Price },
    Mid(Price),
}

/// The latest quote per symbol.
pub trait QuoteSource: Send + Sync {
    fn quote(&self, symbol: &Symbol) -> Option<Quote>;
}

/// A [`QuoteSource`] kept in memory, updated with every tick the feed publishes.
#[derive(Debug, Default)]
pub struct InMemoryQuotes {
    quotes: RwLock<HashMap<Symbol, Quote>>,
}

impl InMemoryQuotes {
    pub fn new() -> InMemoryQuotes {
        InMemoryQuotes::default()
    }

    pub fn update(&self, tick: &Tick) {
        self.set(&tick.symbol, Quote::BidAsk { bid: tick.bid, ask: tick.ask });
    }

    pub fn set(&self, symbol: &Symbol, quote: Quote) {
        // A poisoned lock only means a writer panicked between two plain assignments; the map is intact.
        let mut quotes = self.quotes.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        quotes.insert(symbol.clone(), quote);
    }
}

impl QuoteSource for InMemoryQuotes {
    fn quote(&self, symbol: &Symbol) -> Option<Quote> {
        self.quotes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(symbol).copied()
    }
}
