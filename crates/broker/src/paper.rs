//! The paper broker: fills against the latest quote with a spread and slippage, rests limit orders until a
//! tick crosses them, and keeps the stop loss and take profits on the position for the position monitor.

use crate::order::{ClientOrderId, CloseAck, OrderAck, OrderEntry, OrderRef, OrderState, OrderStatus, PlaceOrder};
use crate::quotes::{Quote, QuoteSource};
use crate::{Broker, BrokerError, check_fraction};
use async_trait::async_trait;
use domain::{Instrument, InstrumentRegistry, Price, Side, Tick};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Costs the paper broker charges, in pips. For crypto and stocks, which have no pips, a pip here is one
/// unit of the last decimal the market quotes (0.01 for AAPL and BTCUSDT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperConfig {
    /// Added around a mid-only quote (half each side); a bid/ask quote already has its spread.
    pub spread_pips: Decimal,
    /// Added against the trader on every market fill (entries and closes).
    pub slippage_pips: Decimal,
}

impl Default for PaperConfig {
    fn default() -> Self {
        PaperConfig { spread_pips: Decimal::ONE, slippage_pips: Decimal::ZERO }
    }
}

#[derive(Debug)]
struct PaperOrder {
    state: OrderState,
    /// What is still open of the filled quantity, after partial closes.
    open_qty: Decimal,
}

#[derive(Debug, Default)]
struct PaperState {
    orders: HashMap<ClientOrderId, PaperOrder>,
    next_id: u64,
}

/// A broker that trades against the market feed without real money: the default for every follower.
pub struct PaperBroker {
    quotes: Arc<dyn QuoteSource>,
    config: PaperConfig,
    registry: &'static InstrumentRegistry,
    state: Mutex<PaperState>,
}

impl std::fmt::Debug for PaperBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaperBroker").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The bid and ask a fill uses, after the configured spread.
#[derive(Debug, Clone, Copy)]
struct Book {
    bid: Decimal,
    ask: Decimal,
    pip: Decimal,
}

impl PaperBroker {
    pub fn new(quotes: Arc<dyn QuoteSource>, config: PaperConfig) -> PaperBroker {
        PaperBroker { quotes, config, registry: InstrumentRegistry::global(), state: Mutex::new(PaperState::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, PaperState> {
        // Every update below is a handful of assignments that leave the maps consistent even if a caller
        // panicked while holding the lock.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn instrument(&self, symbol: &domain::Symbol) -> Result<&'static Instrument, BrokerError> {
        self.registry.get(symbol.as_str()).map_err(|e| BrokerError::rejected("unknown_symbol", e.to_string()))
    }

    fn book(&self, instrument: &Instrument) -> Result<Book, BrokerError> {
        let pip = instrument.pip_size.unwrap_or_else(|| Decimal::new(1, instrument.price_precision));
        let quote = self.quotes.quote(&instrument.symbol).ok_or_else(|| {
            // The feed has not priced it yet (start-up, a gap); a later attempt can succeed.
            BrokerError::retryable(format!("no quote yet for {}", instrument.symbol))
        })?;
        Ok(match quote {
            Quote::BidAsk { bid, ask } => Book { bid: bid.value(), ask: ask.value(), pip },
            Quote::Mid(mid) => {
                let half = self.config.spread_pips * pip / Decimal::TWO;
                Book { bid: mid.value() - half, ask: mid.value() + half, pip }
            }
        })
    }

    /// A market fill: longs buy at the ask, shorts sell at the bid, slippage against the trader.
    fn market_fill(&self, book: Book, side: Side) -> Result<Price, BrokerError> {
        let slip = self.config.slippage_pips * book.pip;
        let raw = match side {
            Side::Long => book.ask + slip,
            Side::Short => book.bid - slip,
        };
        Price::new(raw).map_err(|e| BrokerError::rejected("bad_price", format!("no valid fill price: {e}")))
    }

    /// Fills resting limit orders the tick crosses: a buy limit when the ask is at or below it, a sell limit
    /// when the bid is at or above it, at the tick's price (never worse than the limit). Returns the orders
    /// it filled. The tick should also be in the quote source; the two are fed separately.
    pub fn on_tick(&self, tick: &Tick) -> Vec<OrderState> {
        let mut state = self.lock();
        let mut filled = Vec::new();
        for order in state.orders.values_mut() {
            let s = &mut order.state;
            if s.symbol != tick.symbol || s.status != OrderStatus::Pending {
                continue;
            }
            let OrderEntry::Limit(limit) = s.entry else { continue };
            let fill = match s.side {
                Side::Long if tick.ask <= limit => tick.ask,
                Side::Short if tick.bid >= limit => tick.bid,
                _ => continue,
            };
            s.status = OrderStatus::Filled;
            s.filled_qty = s.qty;
            s.avg_fill_price = Some(fill);
            order.open_qty = s.qty;
            filled.push(s.clone());
        }
        filled
    }
}

/// Stop loss below and take profits above a long's `reference` price; the mirror for a short.
fn check_levels(
    side: Side,
    reference: Decimal,
    stop_loss: Option<Price>,
    take_profits: &[Price],
) -> Result<(), BrokerError> {
    let d = side.direction();
    if let Some(sl) = stop_loss
        && (sl.value() - reference) * d >= Decimal::ZERO
    {
        return Err(BrokerError::rejected(
            "stop_loss_side",
            format!("a {side} stop loss must be on the losing side of {reference}, got {sl}"),
        ));
    }
    if let Some(tp) = take_profits.iter().find(|tp| (tp.value() - reference) * d <= Decimal::ZERO) {
        return Err(BrokerError::rejected(
            "take_profit_side",
            format!("a {side} take profit must be on the winning side of {reference}, got {tp}"),
        ));
    }
    Ok(())
}

fn find<'a>(state: &'a mut PaperState, order: &OrderRef) -> Result<&'a mut PaperOrder, BrokerError> {
    match state.orders.get_mut(&order.client_order_id) {
        Some(found) if found.state.broker_order_id == order.broker_order_id => Ok(found),
        _ => Err(BrokerError::UnknownOrder(order.client_order_id.to_string())),
    }
}

#[async_trait]
impl Broker for PaperBroker {
    async fn place(&self, order: &PlaceOrder) -> Result<OrderAck, BrokerError> {
        let instrument = self.instrument(&order.symbol)?;
        let mut state = self.lock();
        if let Some(existing) = state.orders.get(&order.client_order_id) {
            if !order.same_order_as(&existing.state) {
                return Err(BrokerError::rejected(
                    "client_order_id_reused",
                    format!("client order id {} belongs to a different order", order.client_order_id),
                ));
            }
            return Ok(OrderAck { state: existing.state.clone(), duplicate: true });
        }
        let book = self.book(instrument)?;
        let (status, fill, reference) = match order.entry {
            OrderEntry::Market => {
                let fill = self.market_fill(book, order.side)?;
                (OrderStatus::Filled, Some(fill), fill.value())
            }
            OrderEntry::Limit(limit) => {
                // A limit already through the market fills at once at the market price, as on a real venue.
                let at = match order.side {
                    Side::Long => book.ask,
                    Side::Short => book.bid,
                };
                let marketable = (limit.value() - at) * order.side.direction() >= Decimal::ZERO;
                match Price::new(at) {
                    Ok(price) if marketable => (OrderStatus::Filled, Some(price), at),
                    _ => (OrderStatus::Pending, None, limit.value()),
                }
            }
        };
        check_levels(order.side, reference, order.stop_loss, &order.take_profits)?;
        state.next_id += 1;
        let qty = order.qty.value();
        let filled = status == OrderStatus::Filled;
        let record = OrderState {
            client_order_id: order.client_order_id.clone(),
            broker_order_id: format!("paper-{}", state.next_id),
            symbol: order.symbol.clone(),
            side: order.side,
            entry: order.entry,
            qty,
            filled_qty: if filled { qty } else { Decimal::ZERO },
            avg_fill_price: fill,
            status,
            stop_loss: order.stop_loss,
            take_profits: order.take_profits.clone(),
        };
        let open_qty = record.filled_qty;
        state.orders.insert(order.client_order_id.clone(), PaperOrder { state: record.clone(), open_qty });
        Ok(OrderAck { state: record, duplicate: false })
    }

    async fn modify_stop(&self, order: &OrderRef, stop_loss: Price) -> Result<OrderState, BrokerError> {
        let instrument = self.instrument(&order.symbol)?;
        let mut state = self.lock();
        let found = find(&mut state, order)?;
        let reference = match found.state.status {
            OrderStatus::Pending => match found.state.entry {
                OrderEntry::Limit(limit) => limit.value(),
                OrderEntry::Market => found.state.avg_fill_price.map(Price::value).unwrap_or_default(),
            },
            OrderStatus::Filled | OrderStatus::PartiallyFilled if found.open_qty > Decimal::ZERO => {
                // A stop through the current exit price would close the position at once: refuse it, as a
                // real venue refuses a sell stop above the bid.
                let book = self.book(instrument)?;
                match found.state.side {
                    Side::Long => book.bid,
                    Side::Short => book.ask,
                }
            }
            _ => {
                return Err(BrokerError::rejected(
                    "not_open",
                    format!("order {} is no longer open", order.client_order_id),
                ));
            }
        };
        check_levels(found.state.side, reference, Some(stop_loss), &[])?;
        found.state.stop_loss = Some(stop_loss);
        Ok(found.state.clone())
    }

    async fn close(&self, order: &OrderRef, fraction: Decimal) -> Result<CloseAck, BrokerError> {
        check_fraction(fraction)?;
        let instrument = self.instrument(&order.symbol)?;
        let book = self.book(instrument)?;
        let mut state = self.lock();
        let found = find(&mut state, order)?;
        if found.open_qty <= Decimal::ZERO {
            return Err(BrokerError::rejected(
                "not_open",
                format!("order {} has no open position", order.client_order_id),
            ));
        }
        let qty = if fraction == Decimal::ONE {
            found.open_qty
        } else {
            // Lots move in steps of 0.01; round down so a partial close never closes more than asked.
            (found.open_qty * fraction).round_dp_with_strategy(2, RoundingStrategy::ToZero)
        };
        if qty <= Decimal::ZERO {
            return Err(BrokerError::rejected(
                "below_min_qty",
                format!("{fraction} of {} lots is below the 0.01 lot step", found.open_qty),
            ));
        }
        let price = self.market_fill(book, found.state.side.opposite())?;
        found.open_qty -= qty;
        Ok(CloseAck { qty, price: Some(price), remaining: Some(found.open_qty) })
    }

    async fn cancel(&self, order: &OrderRef) -> Result<OrderState, BrokerError> {
        let mut state = self.lock();
        let found = find(&mut state, order)?;
        match found.state.status {
            OrderStatus::Pending => found.state.status = OrderStatus::Cancelled,
            OrderStatus::Cancelled => {}
            _ => {
                return Err(BrokerError::rejected(
                    "not_cancelable",
                    format!("order {} has filled; close it instead", order.client_order_id),
                ));
            }
        }
        Ok(found.state.clone())
    }

    async fn order(&self, client_order_id: &ClientOrderId) -> Result<Option<OrderState>, BrokerError> {
        Ok(self.lock().orders.get(client_order_id).map(|o| o.state.clone()))
    }
}
