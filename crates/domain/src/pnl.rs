//! Profit and loss: pips, price change, and money in the quote and the account currency.
//!
//! Profit = (exit − entry) × direction × lots × contract size, in the quote currency, then converted to the
//! account currency at the exit price (or, for a cross such as EURGBP, at the latest price of the pair that
//! links the quote currency to the account currency).

use crate::{Instrument, Lots, Price, Side, TradeResult};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PnlError {
    #[error("no price is known to convert {from} into {to}; a {from}{to} or {to}{from} quote is needed")]
    NoConversionRate { from: String, to: String },
}

/// What a position made or lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Pips, to one decimal; None for instruments without pips.
    pub pips: Option<Decimal>,
    /// (exit − entry) × direction, in price units.
    pub price_change: Decimal,
    /// price_change / entry, in percent, to two decimals.
    pub percent: Decimal,
    /// Profit in the instrument's quote currency, unrounded.
    pub profit_quote: Decimal,
    /// Profit in the account currency, rounded to the cent; None when no rate links the quote currency to
    /// the account currency yet (a cross such as EURGBP before any GBPUSD price was seen).
    pub profit: Option<Decimal>,
    pub result: TradeResult,
}

/// Stablecoins settle as the dollar for accounting; we say so rather than invent a rate.
fn currency_alias(ccy: &str) -> &str {
    match ccy {
        "USDT" | "USDC" => "USD",
        other => other,
    }
}

/// The latest known mid price of each symbol, used to convert profit in one currency into another.
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    mids: HashMap<String, Decimal>,
}

impl RateBook {
    pub fn set(&mut self, symbol: &str, mid: Decimal) {
        if let Some(slot) = self.mids.get_mut(symbol) {
            *slot = mid;
        } else {
            self.mids.insert(symbol.to_string(), mid);
        }
    }

    pub fn mid(&self, symbol: &str) -> Option<Decimal> {
        self.mids.get(symbol).copied()
    }

    /// Converts `amount` of `instrument`'s quote currency into `account`, given the trade's exit price.
    pub fn to_account(
        &self,
        amount: Decimal,
        instrument: &Instrument,
        exit: Price,
        account: &str,
    ) -> Result<Decimal, PnlError> {
        let quote = currency_alias(instrument.quote);
        let base = currency_alias(instrument.base);
        let account = currency_alias(account);
        if quote == account {
            return Ok(amount);
        }
        if base == account {
            return Ok(amount / exit.value());
        }
        if let Some(rate) = self.mid(&format!("{quote}{account}")) {
            return Ok(amount * rate);
        }
        if let Some(rate) = self.mid(&format!("{account}{quote}")).filter(|r| !r.is_zero()) {
            return Ok(amount / rate);
        }
        Err(PnlError::NoConversionRate { from: quote.to_string(), to: account.to_string() })
    }
}

/// Pips between two prices in the trade's favour (negative against it), to one decimal.
pub fn pips(instrument: &Instrument, side: Side, entry: Price, exit: Price) -> Option<Decimal> {
    let change = (exit.value() - entry.value()) * side.direction();
    instrument.to_pips(change).map(|p| p.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero).normalize())
}

/// Everything a closed position is reported with.
pub fn outcome(
    instrument: &Instrument,
    side: Side,
    entry: Price,
    exit: Price,
    lots: Lots,
    rates: &RateBook,
    account: &str,
) -> Outcome {
    let price_change = (exit.value() - entry.value()) * side.direction();
    let profit_quote = price_change * lots.value() * instrument.contract_size;
    let profit = rates
        .to_account(profit_quote, instrument, exit, account)
        .ok()
        .map(|p| p.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero).normalize());
    let percent = (price_change / entry.value() * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    // The account-currency profit has the sign of the quote-currency profit, so the result never waits on a rate.
    let result = match profit_quote.round_dp(8).cmp(&Decimal::ZERO) {
        std::cmp::Ordering::Greater => TradeResult::Win,
        std::cmp::Ordering::Less => TradeResult::Loss,
        std::cmp::Ordering::Equal => TradeResult::Breakeven,
    };
    Outcome {
        pips: pips(instrument, side, entry, exit),
        price_change: price_change.normalize(),
        percent: percent.normalize(),
        profit_quote: profit_quote.normalize(),
        profit,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstrumentRegistry;
    use rust_decimal_macros::dec;

    fn p(v: Decimal) -> Price {
        Price::new(v).unwrap()
    }

    #[test]
    fn design_example_eurusd_long() {
        let eurusd = InstrumentRegistry::global().get("EURUSD").unwrap();
        let o = outcome(
            eurusd,
            Side::Long,
            p(dec!(1.0854)),
            p(dec!(1.0962)),
            Lots::parse("0.5").unwrap(),
            &RateBook::default(),
            "USD",
        );
        assert_eq!(o.pips, Some(dec!(108)));
        assert_eq!(o.profit, Some(dec!(540.00)));
        assert_eq!(o.result, TradeResult::Win);
    }

    #[test]
    fn design_example_usdjpy_converted_at_exit() {
        let usdjpy = InstrumentRegistry::global().get("USDJPY").unwrap();
        let o = outcome(
            usdjpy,
            Side::Long,
            p(dec!(150.00)),
            p(dec!(150.50)),
            Lots::parse("1").unwrap(),
            &RateBook::default(),
            "USD",
        );
        assert_eq!(o.pips, Some(dec!(50)));
        assert_eq!(o.profit_quote, dec!(50000));
        assert_eq!(o.profit, Some(dec!(332.23)));
    }

    #[test]
    fn cross_needs_a_rate_and_uses_it() {
        let eurgbp = InstrumentRegistry::global().get("EURGBP").unwrap();
        let lots = Lots::parse("1").unwrap();
        let o = outcome(eurgbp, Side::Short, p(dec!(0.8600)), p(dec!(0.8500)), lots, &RateBook::default(), "USD");
        assert_eq!(o.profit, None);
        assert_eq!(o.result, TradeResult::Win);
        assert!(matches!(
            RateBook::default().to_account(dec!(1), eurgbp, p(dec!(0.85)), "USD"),
            Err(PnlError::NoConversionRate { .. })
        ));
        let mut rates = RateBook::default();
        rates.set("GBPUSD", dec!(1.25));
        let o = outcome(eurgbp, Side::Short, p(dec!(0.8600)), p(dec!(0.8500)), lots, &rates, "USD");
        assert_eq!(o.pips, Some(dec!(100)));
        assert_eq!(o.profit, Some(dec!(1250)));
    }

    #[test]
    fn gold_and_crypto() {
        let r = InstrumentRegistry::global();
        let gold = r.get("XAUUSD").unwrap();
        let o = outcome(
            gold,
            Side::Short,
            p(dec!(2000.0)),
            p(dec!(2010.5)),
            Lots::parse("0.1").unwrap(),
            &RateBook::default(),
            "USD",
        );
        assert_eq!(o.pips, Some(dec!(-105)));
        assert_eq!(o.profit, Some(dec!(-105)));
        assert_eq!(o.result, TradeResult::Loss);
        let btc = r.get("BTCUSDT").unwrap();
        let o = outcome(
            btc,
            Side::Long,
            p(dec!(40000)),
            p(dec!(41000)),
            Lots::parse("0.5").unwrap(),
            &RateBook::default(),
            "USD",
        );
        assert_eq!(o.pips, None);
        assert_eq!(o.percent, dec!(2.5));
        assert_eq!(o.profit, Some(dec!(500)));
    }

    mod properties {
        use super::*;
        use crate::trade::check_levels;
        use proptest::prelude::*;

        fn any_instrument() -> impl Strategy<Value = &'static Instrument> {
            let all = InstrumentRegistry::global().all();
            (0..all.len()).prop_map(move |i| &all[i])
        }

        /// A price on `instrument`'s own grid, between 1 and 100,000 of its smallest increments × 1000.
        fn grid_price(instrument: &Instrument, steps: i64) -> Price {
            p(Decimal::new(steps, instrument.price_precision))
        }

        proptest! {
            #[test]
            fn sign_follows_direction_and_sides_mirror(
                instrument in any_instrument(),
                a in 1_000i64..10_000_000,
                b in 1_000i64..10_000_000,
                lots in 1i64..10_000,
            ) {
                let (entry, exit) = (grid_price(instrument, a), grid_price(instrument, b));
                let lots = Lots::new_checked(Decimal::new(lots, 2)).unwrap();
                let mut rates = RateBook::default();
                for (sym, mid) in [("GBPUSD", dec!(1.25)), ("EURUSD", dec!(1.08)), ("AUDUSD", dec!(0.66)), ("NZDUSD", dec!(0.6)), ("USDCAD", dec!(1.36)), ("USDCHF", dec!(0.9)), ("USDJPY", dec!(150))] {
                    rates.set(sym, mid);
                }
                let long = outcome(instrument, Side::Long, entry, exit, lots, &rates, "USD");
                let short = outcome(instrument, Side::Short, entry, exit, lots, &rates, "USD");
                let profit = long.profit.expect("every quote currency has a rate here");
                prop_assert_eq!(profit.is_sign_positive() && !profit.is_zero(), exit > entry && long.result == TradeResult::Win);
                prop_assert_eq!(long.profit_quote, -short.profit_quote);
                prop_assert_eq!(long.profit.map(|v| -v), short.profit);
                prop_assert_eq!(long.pips.map(|v| -v), short.pips);
                // Swapping entry and exit of a long is the short trade's quote-currency result.
                let reversed = outcome(instrument, Side::Long, exit, entry, lots, &rates, "USD");
                prop_assert_eq!(reversed.profit_quote, short.profit_quote);
            }

            #[test]
            fn pips_and_price_round_trip(instrument in any_instrument(), tenths in -100_000i64..100_000) {
                let pips = Decimal::new(tenths, 1);
                if let Some(distance) = instrument.from_pips(pips) {
                    prop_assert_eq!(instrument.to_pips(distance).unwrap().normalize(), pips.normalize());
                } else {
                    prop_assert!(instrument.pip_size.is_none());
                }
            }

            #[test]
            fn levels_are_accepted_exactly_when_on_the_right_side(
                entry in 1i64..1_000_000, sl in 1i64..1_000_000, tp in 1i64..1_000_000, long in any::<bool>(),
            ) {
                let side = if long { Side::Long } else { Side::Short };
                let (e, s, t) = (p(Decimal::new(entry, 4)), p(Decimal::new(sl, 4)), p(Decimal::new(tp, 4)));
                let ok = check_levels(side, e, Some(s), Some(t)).is_ok();
                let expected = if long { sl < entry && tp > entry } else { sl > entry && tp < entry };
                prop_assert_eq!(ok, expected);
            }
        }
    }
}
