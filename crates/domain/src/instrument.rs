//! The instruments Signalpost knows, with the conventions that turn price moves into pips and money.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// An instrument's canonical name, upper case with no separators: `EURUSD`, `BTCUSDT`, `AAPL`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(String);

impl Symbol {
    /// Canonicalises what people type: `eur/usd`, `EUR-USD` and `EURUSD` are the same symbol.
    pub fn normalize(text: &str) -> Symbol {
        Symbol(text.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetClass {
    Forex,
    Metal,
    Crypto,
    Stock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instrument {
    /// Position in the registry; the trigger book indexes by it.
    pub index: u16,
    pub symbol: Symbol,
    pub asset_class: AssetClass,
    pub base: &'static str,
    pub quote: &'static str,
    /// None for crypto and stocks, whose distances are reported in price units and percent.
    pub pip_size: Option<Decimal>,
    /// Units of the base per lot: 100,000 for forex, 100 oz for gold, 5,000 oz for silver, 1 otherwise.
    pub contract_size: Decimal,
    /// Decimal places the market quotes in.
    pub price_precision: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown instrument {name:?}{}", suggestion_text(.suggestions))]
pub struct UnknownInstrument {
    pub name: String,
    pub suggestions: Vec<String>,
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", suggestions.join(", ")) }
}

const FOREX: &[&str] = &[
    "EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF", "USDJPY", "EURGBP", "EURJPY", "EURCHF", "EURAUD",
    "EURCAD", "EURNZD", "GBPJPY", "GBPCHF", "GBPAUD", "GBPCAD", "GBPNZD", "AUDJPY", "AUDCHF", "AUDCAD", "AUDNZD",
    "NZDJPY", "NZDCHF", "NZDCAD", "CADJPY", "CADCHF", "CHFJPY",
];

/// (base, price precision) of the USDT-quoted crypto pairs.
const CRYPTO: &[(&str, u32)] = &[
    ("BTC", 2),
    ("ETH", 2),
    ("BNB", 2),
    ("SOL", 2),
    ("XRP", 4),
    ("ADA", 4),
    ("DOGE", 5),
    ("LTC", 2),
    ("DOT", 3),
    ("AVAX", 2),
    ("LINK", 3),
    ("TRX", 5),
];

const STOCKS: &[&str] =
    &["AAPL", "MSFT", "GOOG", "GOOGL", "AMZN", "META", "NVDA", "TSLA", "AMD", "NFLX", "INTC", "JPM", "SPY", "QQQ"];

/// Every instrument Signalpost trades, looked up by symbol.
#[derive(Debug)]
pub struct InstrumentRegistry {
    instruments: Vec<Instrument>,
    by_symbol: HashMap<Symbol, u16>,
}

impl InstrumentRegistry {
    /// The built-in registry: forex majors and crosses, gold and silver, USDT crypto pairs, US stocks.
    pub fn global() -> &'static InstrumentRegistry {
        static REGISTRY: OnceLock<InstrumentRegistry> = OnceLock::new();
        REGISTRY.get_or_init(InstrumentRegistry::builtin)
    }

    fn builtin() -> InstrumentRegistry {
        let mut instruments = Vec::new();
        let mut push = |symbol: String,
                        asset_class,
                        base: &'static str,
                        quote: &'static str,
                        pip_size,
                        contract_size,
                        price_precision| {
            let index = instruments.len() as u16;
            instruments.push(Instrument {
                index,
                symbol: Symbol(symbol),
                asset_class,
                base,
                quote,
                pip_size,
                contract_size,
                price_precision,
            });
        };
        for pair in FOREX {
            let (base, quote) = pair.split_at(3);
            let jpy = quote == "JPY";
            push(
                pair.to_string(),
                AssetClass::Forex,
                base,
                quote,
                Some(if jpy { Decimal::new(1, 2) } else { Decimal::new(1, 4) }),
                Decimal::from(100_000),
                if jpy { 3 } else { 5 },
            );
        }
        push("XAUUSD".into(), AssetClass::Metal, "XAU", "USD", Some(Decimal::new(1, 1)), Decimal::from(100), 2);
        push("XAGUSD".into(), AssetClass::Metal, "XAG", "USD", Some(Decimal::new(1, 2)), Decimal::from(5_000), 3);
        for (base, precision) in CRYPTO {
            push(format!("{base}USDT"), AssetClass::Crypto, base, "USDT", None, Decimal::ONE, *precision);
        }
        // Dollar-quoted crypto as spot venues such as Coinbase and Bitstamp list it.
        for (base, precision) in [("BTC", 2), ("ETH", 2)] {
            push(format!("{base}USD"), AssetClass::Crypto, base, "USD", None, Decimal::ONE, precision);
        }
        for ticker in STOCKS {
            push(ticker.to_string(), AssetClass::Stock, ticker, "USD", None, Decimal::ONE, 2);
        }
        let by_symbol = instruments.iter().map(|i| (i.symbol.clone(), i.index)).collect();
        InstrumentRegistry { instruments, by_symbol }
    }

    /// Looks an instrument up by any common spelling; an unknown name comes back with the closest names.
    pub fn get(&self, name: &str) -> Result<&Instrument, UnknownInstrument> {
        let symbol = Symbol::normalize(name);
        if let Some(&i) = self.by_symbol.get(&symbol) {
            return Ok(&self.instruments[i as usize]);
        }
        Err(UnknownInstrument { name: name.trim().to_string(), suggestions: self.closest(symbol.as_str()) })
    }

    pub fn by_index(&self, index: u16) -> Option<&Instrument> {
        self.instruments.get(index as usize)
    }

    pub fn all(&self) -> &[Instrument] {
        &self.instruments
    }

    fn closest(&self, wanted: &str) -> Vec<String> {
        let mut scored: Vec<(usize, &str)> = self
            .instruments
            .iter()
            .map(|i| (strsim::damerau_levenshtein(wanted, i.symbol.as_str()), i.symbol.as_str()))
            .filter(|(d, _)| *d <= 3)
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, s)| s.to_string()).collect()
    }
}

impl Instrument {
    /// Rejects a price quoted more finely than this market quotes, so "1.085401" on EURUSD is caught.
    pub fn check_precision(&self, price: crate::Price) -> Result<(), crate::TradeError> {
        if price.value().normalize().scale() > self.price_precision {
            return Err(crate::TradeError::TooPrecise {
                symbol: self.symbol.clone(),
                price,
                places: self.price_precision,
            });
        }
        Ok(())
    }

    /// Converts a price distance to pips; None where the instrument has no pips.
    pub fn to_pips(&self, distance: Decimal) -> Option<Decimal> {
        self.pip_size.map(|pip| distance / pip)
    }

    /// Converts pips to a price distance; None where the instrument has no pips.
    pub fn from_pips(&self, pips: Decimal) -> Option<Decimal> {
        self.pip_size.map(|pip| pips * pip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn conventions_match_the_design() {
        let r = InstrumentRegistry::global();
        let eurusd = r.get("EURUSD").unwrap();
        assert_eq!(eurusd.pip_size, Some(dec!(0.0001)));
        assert_eq!(eurusd.contract_size, dec!(100000));
        assert_eq!(r.get("usd/jpy").unwrap().pip_size, Some(dec!(0.01)));
        assert_eq!(r.get("GBPJPY").unwrap().quote, "JPY");
        assert_eq!(r.get("XAUUSD").unwrap().pip_size, Some(dec!(0.1)));
        assert_eq!(r.get("XAUUSD").unwrap().contract_size, dec!(100));
        assert_eq!(r.get("XAGUSD").unwrap().pip_size, Some(dec!(0.01)));
        assert_eq!(r.get("XAGUSD").unwrap().contract_size, dec!(5000));
        assert_eq!(r.get("BTC-USDT").unwrap().pip_size, None);
        assert_eq!(r.get("AAPL").unwrap().contract_size, dec!(1));
        for (i, inst) in r.all().iter().enumerate() {
            assert_eq!(inst.index as usize, i);
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let err = InstrumentRegistry::global().get("EURUDS").unwrap_err();
        assert!(err.suggestions.contains(&"EURUSD".to_string()), "{err}");
        assert!(err.to_string().contains("did you mean"), "{err}");
        let err = InstrumentRegistry::global().get("ZZZZZZZZZZZZ").unwrap_err();
        assert!(err.suggestions.is_empty());
    }
}
