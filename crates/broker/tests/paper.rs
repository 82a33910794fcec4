//! The paper broker's own rules: spread and slippage in pips, limits that wait for a tick to cross them,
//! levels on the right sides, and partial closes in lot steps.

use broker::{
    Broker, BrokerError, ClientOrderId, InMemoryQuotes, OrderEntry, OrderStatus, PaperBroker, PaperConfig, PlaceOrder,
    Quote,
};
use chrono::{TimeZone, Utc};
use domain::{Lots, Price, Side, Symbol, Tick};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;

fn price(value: Decimal) -> Price {
    Price::new(value).unwrap()
}

fn eurusd() -> Symbol {
    Symbol::normalize("EURUSD")
}

fn order(id: &str, side: Side, entry: OrderEntry, lots: Decimal, sl: Option<Decimal>, tp: &[Decimal]) -> PlaceOrder {
    PlaceOrder {
        client_order_id: ClientOrderId::new(id).unwrap(),
        symbol: eurusd(),
        side,
        qty: Lots::new_checked(lots).unwrap(),
        entry,
        stop_loss: sl.map(price),
        take_profits: tp.iter().copied().map(price).collect(),
        leverage: None,
    }
}

fn tick(bid: Decimal, ask: Decimal) -> Tick {
    Tick {
        symbol: eurusd(),
        time: Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap(),
        bid: price(bid),
        ask: price(ask),
        synthetic_from: None,
    }
}

fn broker(quote: Quote, spread: Decimal, slippage: Decimal) -> (PaperBroker, Arc<InMemoryQuotes>) {
    let quotes = Arc::new(InMemoryQuotes::new());
    quotes.set(&eurusd(), quote);
    let broker = PaperBroker::new(quotes.clone(), PaperConfig { spread_pips: spread, slippage_pips: slippage });
    (broker, quotes)
}

#[tokio::test]
async fn market_orders_pay_the_spread_around_a_mid_and_the_slippage() {
    // Mid 1.0850, 2 pips of spread, 1 pip of slippage: buy at 1.0850 + 0.0001 + 0.0001.
    let (paper, _) = broker(Quote::Mid(price(dec!(1.0850))), dec!(2), dec!(1));
    let long = paper.place(&order("spread-long", Side::Long, OrderEntry::Market, dec!(1), None, &[])).await.unwrap();
    assert_eq!(long.state.avg_fill_price, Some(price(dec!(1.0852))));
    let short = paper.place(&order("spread-short", Side::Short, OrderEntry::Market, dec!(1), None, &[])).await.unwrap();
    assert_eq!(short.state.avg_fill_price, Some(price(dec!(1.0848))));
    // Closing the long sells at the bid less slippage.
    let closed = paper.close(&long.order_ref(), Decimal::ONE).await.unwrap();
    assert_eq!(closed.price, Some(price(dec!(1.0848))));
}

#[tokio::test]
async fn a_bid_ask_quote_keeps_its_own_spread() {
    let (paper, _) = broker(Quote::BidAsk { bid: price(dec!(1.0849)), ask: price(dec!(1.0851)) }, dec!(10), dec!(0));
    let long = paper.place(&order("ba-long", Side::Long, OrderEntry::Market, dec!(1), None, &[])).await.unwrap();
    assert_eq!(long.state.avg_fill_price, Some(price(dec!(1.0851))));
    let short = paper.place(&order("ba-short", Side::Short, OrderEntry::Market, dec!(1), None, &[])).await.unwrap();
    assert_eq!(short.state.avg_fill_price, Some(price(dec!(1.0849))));
}

#[tokio::test]
async fn a_limit_rests_until_a_tick_crosses_it() {
    let (paper, quotes) =
        broker(Quote::BidAsk { bid: price(dec!(1.0849)), ask: price(dec!(1.0851)) }, dec!(0), dec!(0));
    let buy = order(
        "limit-buy",
        Side::Long,
        OrderEntry::Limit(price(dec!(1.0800))),
        dec!(0.5),
        Some(dec!(1.0750)),
        &[dec!(1.0900)],
    );
    let ack = paper.place(&buy).await.unwrap();
    assert_eq!(ack.state.status, OrderStatus::Pending);

    let above = tick(dec!(1.0808), dec!(1.0810));
    quotes.update(&above);
    assert!(paper.on_tick(&above).is_empty());
    let crossing = tick(dec!(1.0797), dec!(1.0799));
    quotes.update(&crossing);
    let filled = paper.on_tick(&crossing);
    assert_eq!(filled.len(), 1);
    assert_eq!(filled[0].avg_fill_price, Some(price(dec!(1.0799))), "filled at the ask, better than the limit");
    let seen = paper.order(&buy.client_order_id).await.unwrap().unwrap();
    assert_eq!(seen.status, OrderStatus::Filled);
    assert_eq!(seen.filled_qty, dec!(0.5));
    // A second crossing tick fills nothing more.
    assert!(paper.on_tick(&crossing).is_empty());

    // A sell limit already under the bid fills at once, at the bid.
    let sell = order("limit-sell", Side::Short, OrderEntry::Limit(price(dec!(1.0790))), dec!(1), None, &[]);
    let ack = paper.place(&sell).await.unwrap();
    assert_eq!(ack.state.status, OrderStatus::Filled);
    assert_eq!(ack.state.avg_fill_price, Some(price(dec!(1.0797))));
}

#[tokio::test]
async fn levels_on_the_wrong_side_are_rejected() {
    let (paper, _) = broker(Quote::Mid(price(dec!(1.0850))), dec!(0), dec!(0));
    let sl_above = order("wrong-sl", Side::Long, OrderEntry::Market, dec!(1), Some(dec!(1.0900)), &[]);
    let err = paper.place(&sl_above).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "stop_loss_side"), "{err:?}");
    let tp_above_short = order("wrong-tp", Side::Short, OrderEntry::Market, dec!(1), None, &[dec!(1.0700), dec!(1.09)]);
    let err = paper.place(&tp_above_short).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "take_profit_side"), "{err:?}");
    assert_eq!(paper.order(&sl_above.client_order_id).await.unwrap(), None, "a rejected order is not kept");
}

#[tokio::test]
async fn a_known_symbol_without_a_quote_is_retryable() {
    let (paper, _) = broker(Quote::Mid(price(dec!(1.0850))), dec!(0), dec!(0));
    let gbp = PlaceOrder {
        symbol: Symbol::normalize("GBPUSD"),
        ..order("no-quote", Side::Long, OrderEntry::Market, dec!(1), None, &[])
    };
    let err = paper.place(&gbp).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn partial_closes_round_down_to_the_lot_step() {
    let (paper, _) = broker(Quote::Mid(price(dec!(1.0850))), dec!(0), dec!(0));
    let ack = paper.place(&order("partial", Side::Long, OrderEntry::Market, dec!(0.03), None, &[])).await.unwrap();
    let reference = ack.order_ref();
    let half = paper.close(&reference, dec!(0.5)).await.unwrap();
    assert_eq!((half.qty, half.remaining), (dec!(0.01), Some(dec!(0.02))));
    let err = paper.close(&reference, dec!(0.1)).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "below_min_qty"), "{err:?}");
    let err = paper.close(&reference, Decimal::ZERO).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "invalid_fraction"), "{err:?}");
    let rest = paper.close(&reference, Decimal::ONE).await.unwrap();
    assert_eq!((rest.qty, rest.remaining), (dec!(0.02), Some(Decimal::ZERO)));
}

#[tokio::test]
async fn a_reference_with_another_broker_id_is_an_unknown_order() {
    let (paper, _) = broker(Quote::Mid(price(dec!(1.0850))), dec!(0), dec!(0));
    let ack = paper.place(&order("ref", Side::Long, OrderEntry::Market, dec!(1), None, &[])).await.unwrap();
    let mut reference = ack.order_ref();
    reference.broker_order_id = "paper-999".into();
    let err = paper.cancel(&reference).await.unwrap_err();
    assert!(matches!(err, BrokerError::UnknownOrder(_)), "{err:?}");
}
