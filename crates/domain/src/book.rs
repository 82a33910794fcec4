//! The trigger book: open trades indexed by instrument and by price level, so that a tick finds the stop
//! losses and take profits it crosses in O(log n + hits) instead of scanning every open trade.
//!
//! Each instrument keeps two ladders, one per price a position closes at (longs at the bid, shorts at the
//! ask). A ladder holds the levels that fire when the price falls to them (long stop losses, short take
//! profits) and those that fire when it rises to them (long take profits, short stop losses). The nearest
//! level on each side is cached, so a tick that crosses nothing costs four integer comparisons.

use crate::{Price, Side, TradeId};
use std::collections::{BTreeSet, HashMap};

/// A price as an integer count of 1e-8, exact for every `Price` (which has at most eight decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FixedPrice(pub i64);

impl FixedPrice {
    pub fn from_price(price: Price) -> FixedPrice {
        let mut value = price.value();
        value.rescale(crate::price::MAX_PRICE_SCALE);
        // Price::new bounds the value below 1e10, so value × 1e8 < 1e18 fits an i64.
        FixedPrice(value.mantissa() as i64)
    }

    pub fn to_price(self) -> Price {
        Price::new(rust_decimal::Decimal::new(self.0, crate::price::MAX_PRICE_SCALE))
            .expect("a FixedPrice is only ever made from a valid Price")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TriggerKind {
    StopLoss,
    TakeProfit,
}

/// A level a tick reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub trade: TradeId,
    pub kind: TriggerKind,
    pub level: FixedPrice,
}

/// What the book needs to know about an open trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedTrade {
    pub id: TradeId,
    /// `Instrument::index`.
    pub instrument: u16,
    pub side: Side,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
}

/// Per-trade record, kept small: levels are 0 when absent (prices are always positive).
#[derive(Debug, Clone, Copy)]
struct Slot {
    stop_loss: i64,
    take_profit: i64,
    instrument: u16,
    side: Side,
}

#[derive(Debug)]
struct Ladder {
    /// Fire when the price is at or below the level; the highest fires first.
    falling: BTreeSet<(i64, i64)>,
    /// Fire when the price is at or above the level; the lowest fires first.
    rising: BTreeSet<(i64, i64)>,
    highest_falling: i64,
    lowest_rising: i64,
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder { falling: BTreeSet::new(), rising: BTreeSet::new(), highest_falling: i64::MIN, lowest_rising: i64::MAX }
    }
}

impl Ladder {
    fn insert(&mut self, falls: bool, level: i64, id: i64) {
        if falls {
            self.falling.insert((level, id));
            self.highest_falling = self.highest_falling.max(level);
        } else {
            self.rising.insert((level, id));
            self.lowest_rising = self.lowest_rising.min(level);
        }
    }

    fn remove(&mut self, falls: bool, level: i64, id: i64) {
        if falls {
            self.falling.remove(&(level, id));
            self.highest_falling = self.falling.last().map_or(i64::MIN, |e| e.0);
        } else {
            self.rising.remove(&(level, id));
            self.lowest_rising = self.rising.first().map_or(i64::MAX, |e| e.0);
        }
    }

    /// Takes every level `price` reaches out of the ladder.
    #[inline]
    fn cross(&mut self, price: i64, fired: &mut Vec<(i64, i64)>) {
        if price <= self.highest_falling {
            while let Some(&(level, id)) = self.falling.last() {
                if level < price {
                    break;
                }
                self.falling.pop_last();
                fired.push((level, id));
            }
            self.highest_falling = self.falling.last().map_or(i64::MIN, |e| e.0);
        }
        if price >= self.lowest_rising {
            while let Some(&(level, id)) = self.rising.first() {
                if level > price {
                    break;
                }
                self.rising.pop_first();
                fired.push((level, id));
            }
            self.lowest_rising = self.rising.first().map_or(i64::MAX, |e| e.0);
        }
    }
}

#[derive(Debug, Default)]
struct InstrumentLadders {
    bid: Ladder,
    ask: Ladder,
}

/// Where a trade's levels live: (ladder is the ask?, stop loss falls?, take profit falls?).
fn placement(side: Side) -> (bool, bool, bool) {
    match side {
        // A long closes at the bid: its stop loss fires on a fall, its take profit on a rise.
        Side::Long => (false, true, false),
        // A short closes at the ask: its stop loss fires on a rise, its take profit on a fall.
        Side::Short => (true, false, true),
    }
}

#[derive(Debug, Default)]
pub struct TriggerBook {
    instruments: Vec<InstrumentLadders>,
    trades: HashMap<i64, Slot>,
    scratch: Vec<(i64, i64)>,
}

impl TriggerBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.trades.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trades.is_empty()
    }

    pub fn contains(&self, id: TradeId) -> bool {
        self.trades.contains_key(&id.0)
    }

    /// Starts watching a trade; watching it again replaces its levels.
    pub fn insert(&mut self, trade: WatchedTrade) {
        self.remove(trade.id);
        let slot = Slot {
            stop_loss: trade.stop_loss.map_or(0, |p| FixedPrice::from_price(p).0),
            take_profit: trade.take_profit.map_or(0, |p| FixedPrice::from_price(p).0),
            instrument: trade.instrument,
            side: trade.side,
        };
        if slot.stop_loss == 0 && slot.take_profit == 0 {
            // Nothing to trigger on; the trade waits for a manual close.
            return;
        }
        let index = trade.instrument as usize;
        if self.instruments.len() <= index {
            self.instruments.resize_with(index + 1, Default::default);
        }
        let (on_ask, sl_falls, tp_falls) = placement(trade.side);
        let ladders = &mut self.instruments[index];
        let ladder = if on_ask { &mut ladders.ask } else { &mut ladders.bid };
        if slot.stop_loss != 0 {
            ladder.insert(sl_falls, slot.stop_loss, trade.id.0);
        }
        if slot.take_profit != 0 {
            ladder.insert(tp_falls, slot.take_profit, trade.id.0);
        }
        self.trades.insert(trade.id.0, slot);
    }

    /// Stops watching a trade (closed by hand, cancelled); returns whether it was watched.
    pub fn remove(&mut self, id: TradeId) -> bool {
        let Some(slot) = self.trades.remove(&id.0) else {
            return false;
        };
        let (on_ask, sl_falls, tp_falls) = placement(slot.side);
        let ladders = &mut self.instruments[slot.instrument as usize];
        let ladder = if on_ask { &mut ladders.ask } else { &mut ladders.bid };
        if slot.stop_loss != 0 {
            ladder.remove(sl_falls, slot.stop_loss, id.0);
        }
        if slot.take_profit != 0 {
            ladder.remove(tp_falls, slot.take_profit, id.0);
        }
        true
    }

    /// Applies a tick and appends every trade whose stop loss or take profit it reached. Those trades are
    /// no longer watched: each fires once.
    #[inline]
    pub fn on_tick(&mut self, instrument: u16, bid: FixedPrice, ask: FixedPrice, fired: &mut Vec<Trigger>) {
        let Some(ladders) = self.instruments.get_mut(instrument as usize) else {
            return;
        };
        self.scratch.clear();
        ladders.bid.cross(bid.0, &mut self.scratch);
        ladders.ask.cross(ask.0, &mut self.scratch);
        if self.scratch.is_empty() {
            return;
        }
        for i in 0..self.scratch.len() {
            let (level, id) = self.scratch[i];
            let Some(slot) = self.trades.remove(&id) else {
                continue;
            };
            let (on_ask, sl_falls, tp_falls) = placement(slot.side);
            let ladder = if on_ask { &mut ladders.ask } else { &mut ladders.bid };
            // A valid trade's stop loss and take profit differ, so the level says which one fired.
            let kind = if slot.stop_loss == level { TriggerKind::StopLoss } else { TriggerKind::TakeProfit };
            // The other level of the same trade is still in a ladder; take it out too.
            match kind {
                TriggerKind::StopLoss if slot.take_profit != 0 => ladder.remove(tp_falls, slot.take_profit, id),
                TriggerKind::TakeProfit if slot.stop_loss != 0 => ladder.remove(sl_falls, slot.stop_loss, id),
                _ => {}
            }
            fired.push(Trigger { trade: TradeId(id), kind, level: FixedPrice(level) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn price(x: i64) -> Price {
        Price::new(rust_decimal::Decimal::new(x, 4)).unwrap()
    }

    fn fixed(x: i64) -> FixedPrice {
        FixedPrice::from_price(price(x))
    }

    #[test]
    fn long_and_short_fire_on_the_right_price() {
        let mut book = TriggerBook::new();
        book.insert(WatchedTrade {
            id: TradeId(1),
            instrument: 0,
            side: Side::Long,
            stop_loss: Some(price(10800)),
            take_profit: Some(price(10962)),
        });
        book.insert(WatchedTrade {
            id: TradeId(2),
            instrument: 0,
            side: Side::Short,
            stop_loss: Some(price(10900)),
            take_profit: Some(price(10700)),
        });
        let mut fired = Vec::new();
        // The ask rises to the short's stop, the bid does not reach the long's take profit.
        book.on_tick(0, fixed(10899), fixed(10901), &mut fired);
        assert_eq!(fired, vec![Trigger { trade: TradeId(2), kind: TriggerKind::StopLoss, level: fixed(10900) }]);
        fired.clear();
        book.on_tick(0, fixed(10962), fixed(10963), &mut fired);
        assert_eq!(fired, vec![Trigger { trade: TradeId(1), kind: TriggerKind::TakeProfit, level: fixed(10962) }]);
        assert!(book.is_empty());
        fired.clear();
        book.on_tick(0, fixed(10000), fixed(10000), &mut fired);
        assert!(fired.is_empty(), "a trade fires once");
    }

    #[test]
    fn other_instruments_are_untouched_and_removal_works() {
        let mut book = TriggerBook::new();
        book.insert(WatchedTrade {
            id: TradeId(1),
            instrument: 3,
            side: Side::Long,
            stop_loss: Some(price(100)),
            take_profit: None,
        });
        book.insert(WatchedTrade {
            id: TradeId(2),
            instrument: 3,
            side: Side::Long,
            stop_loss: Some(price(100)),
            take_profit: None,
        });
        let mut fired = Vec::new();
        book.on_tick(2, fixed(1), fixed(1), &mut fired);
        book.on_tick(9, fixed(1), fixed(1), &mut fired);
        assert!(fired.is_empty());
        assert!(book.remove(TradeId(1)));
        assert!(!book.remove(TradeId(1)));
        book.on_tick(3, fixed(99), fixed(99), &mut fired);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].trade, TradeId(2));
    }

    #[test]
    fn fixed_price_round_trips() {
        let p = Price::parse("64123.12345678").unwrap();
        assert_eq!(FixedPrice::from_price(p).to_price(), p);
        assert_eq!(FixedPrice::from_price(Price::parse("1.5").unwrap()).0, 150_000_000);
    }

    #[derive(Debug, Clone)]
    struct Model {
        id: i64,
        long: bool,
        sl: Option<i64>,
        tp: Option<i64>,
    }

    proptest! {
        /// The book fires exactly what a scan of every open trade would fire, tick by tick.
        #[test]
        fn agrees_with_a_full_scan(
            trades in proptest::collection::vec((any::<bool>(), proptest::option::of(900i64..1100), proptest::option::of(900i64..1100)), 1..60),
            ticks in proptest::collection::vec((900i64..1100, 0i64..5), 1..80),
        ) {
            let mut book = TriggerBook::new();
            let mut open: Vec<Model> = Vec::new();
            for (i, (long, a, b)) in trades.into_iter().enumerate() {
                let entry = 1000;
                let (sl, tp) = if long { (a.filter(|x| *x < entry), b.filter(|x| *x > entry)) } else { (a.filter(|x| *x > entry), b.filter(|x| *x < entry)) };
                let m = Model { id: i as i64, long, sl, tp };
                book.insert(WatchedTrade { id: TradeId(m.id), instrument: 0, side: if long { Side::Long } else { Side::Short }, stop_loss: sl.map(price), take_profit: tp.map(price) });
                if sl.is_some() || tp.is_some() { open.push(m); }
            }
            for (bid, spread) in ticks {
                let ask = bid + spread;
                let mut fired = Vec::new();
                book.on_tick(0, fixed(bid), fixed(ask), &mut fired);
                let mut expected = Vec::new();
                open.retain(|m| {
                    let px = if m.long { bid } else { ask };
                    let sl_hit = m.sl.is_some_and(|sl| if m.long { px <= sl } else { px >= sl });
                    let tp_hit = m.tp.is_some_and(|tp| if m.long { px >= tp } else { px <= tp });
                    if sl_hit { expected.push((m.id, TriggerKind::StopLoss)); }
                    else if tp_hit { expected.push((m.id, TriggerKind::TakeProfit)); }
                    !(sl_hit || tp_hit)
                });
                let mut got: Vec<_> = fired.iter().map(|t| (t.trade.0, t.kind)).collect();
                got.sort_by_key(|x| x.0);
                expected.sort_by_key(|x| x.0);
                prop_assert_eq!(got, expected);
                prop_assert_eq!(book.len(), open.len());
            }
        }
    }
}

/// How a fired level turns into a close: which level counts and at what price.
///
/// On a real tick the position closes at that tick's price (the bid for a long, the ask for a short), so
/// slippage through a level is reported as it happened. On a tick a replay invented from a candle, the
/// candle decides: when it touched both levels the stop loss counts (the conservative rule, since the order
/// inside the candle is unknown), and the fill is at the level, or at the candle's open when the market
/// opened beyond it.
pub fn resolve_fill(
    side: Side,
    stop_loss: Option<Price>,
    take_profit: Option<Price>,
    kind: TriggerKind,
    tick: &crate::Tick,
) -> (TriggerKind, Price) {
    let Some(range) = tick.synthetic_from else {
        return (kind, tick.exit_price(side));
    };
    let stop_touched = stop_loss.is_some_and(|sl| match side {
        Side::Long => range.low <= sl.value(),
        Side::Short => range.high >= sl.value(),
    });
    let kind = if kind == TriggerKind::TakeProfit && stop_touched { TriggerKind::StopLoss } else { kind };
    let level = match kind {
        TriggerKind::StopLoss => stop_loss,
        TriggerKind::TakeProfit => take_profit,
    };
    let Some(level) = level else {
        return (kind, tick.exit_price(side));
    };
    let gapped = match (side, kind) {
        (Side::Long, TriggerKind::StopLoss) | (Side::Short, TriggerKind::TakeProfit) => level.value().min(range.open),
        (Side::Long, TriggerKind::TakeProfit) | (Side::Short, TriggerKind::StopLoss) => level.value().max(range.open),
    };
    (kind, Price::new(gapped).unwrap_or(level))
}

#[cfg(test)]
mod fill_tests {
    use super::*;
    use crate::{CandleRange, Symbol, Tick};
    use rust_decimal_macros::dec;

    fn tick(
        price: rust_decimal::Decimal,
        range: Option<(rust_decimal::Decimal, rust_decimal::Decimal, rust_decimal::Decimal)>,
    ) -> Tick {
        let p = Price::new(price).unwrap();
        Tick {
            symbol: Symbol::normalize("EURUSD"),
            time: chrono::Utc::now(),
            bid: p,
            ask: p,
            synthetic_from: range.map(|(open, high, low)| CandleRange { open, high, low }),
        }
    }

    fn px(v: rust_decimal::Decimal) -> Option<Price> {
        Some(Price::new(v).unwrap())
    }

    #[test]
    fn a_candle_touching_both_levels_counts_the_stop_loss() {
        // Long 1.0850, SL 1.0800, TP 1.0900; a bearish candle reaches 1.0910 first, then 1.0790.
        let t = tick(dec!(1.0910), Some((dec!(1.0850), dec!(1.0910), dec!(1.0790))));
        let (kind, price) = resolve_fill(Side::Long, px(dec!(1.08)), px(dec!(1.09)), TriggerKind::TakeProfit, &t);
        assert_eq!((kind, price.value()), (TriggerKind::StopLoss, dec!(1.08)));
    }

    #[test]
    fn synthetic_fills_at_the_level_unless_the_open_gapped_past_it() {
        let t = tick(dec!(1.0910), Some((dec!(1.0850), dec!(1.0910), dec!(1.0840))));
        let (kind, price) = resolve_fill(Side::Long, px(dec!(1.08)), px(dec!(1.09)), TriggerKind::TakeProfit, &t);
        assert_eq!((kind, price.value()), (TriggerKind::TakeProfit, dec!(1.09)));
        let gap = tick(dec!(1.0750), Some((dec!(1.0760), dec!(1.0770), dec!(1.0750))));
        let (kind, price) = resolve_fill(Side::Long, px(dec!(1.08)), px(dec!(1.09)), TriggerKind::StopLoss, &gap);
        assert_eq!((kind, price.value()), (TriggerKind::StopLoss, dec!(1.076)));
    }

    #[test]
    fn real_ticks_fill_at_their_own_price() {
        let t = tick(dec!(1.0795), None);
        let (kind, price) = resolve_fill(Side::Long, px(dec!(1.08)), px(dec!(1.09)), TriggerKind::StopLoss, &t);
        assert_eq!((kind, price.value()), (TriggerKind::StopLoss, dec!(1.0795)));
    }
}
