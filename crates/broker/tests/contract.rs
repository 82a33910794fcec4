//! One contract every broker meets, run against the paper broker, Alpaca's client talking to testkit's
//! FakeAlpaca, and Binance's (spot and USD-M futures) talking to FakeBinance: bracket placement, idempotent
//! re-placement, stop moves, partial closes, cancelling a pending limit, and the split between rejected and
//! retryable errors.

use broker::{
    AlpacaBroker, AlpacaConfig, AlpacaCredentials, BinanceBroker, BinanceConfig, BinanceCredentials, BinanceMarket,
    Broker, BrokerError, ClientOrderId, InMemoryQuotes, OrderEntry, OrderStatus, PaperBroker, PaperConfig, PlaceOrder,
    Quote,
};
use domain::{Lots, Price, Side, Symbol};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use testkit::alpaca::{FakeAlpaca, Fault};
use testkit::binance::{FakeBinance, Listing};

/// A broker under test, with the means to inject a transport failure where it has a transport.
struct Subject {
    name: &'static str,
    broker: Box<dyn Broker>,
    /// Makes the next request fail with a 500 (`true`) or a 429 (`false`); None for brokers with no transport.
    inject: Option<Box<dyn Fn(bool)>>,
    _keep: Option<Arc<FakeAlpaca>>,
    _keep_binance: Option<Arc<FakeBinance>>,
}

const PRICE: Decimal = dec!(190.00);

fn price(value: Decimal) -> Price {
    Price::new(value).unwrap()
}

fn cid(text: &str) -> ClientOrderId {
    ClientOrderId::new(text).unwrap()
}

fn order(id: &str, symbol: &str, entry: OrderEntry, qty: Decimal) -> PlaceOrder {
    PlaceOrder {
        client_order_id: cid(id),
        symbol: Symbol::normalize(symbol),
        side: Side::Long,
        qty: Lots::new_checked(qty).unwrap(),
        entry,
        stop_loss: Some(price(dec!(185))),
        take_profits: vec![price(dec!(200))],
        leverage: None,
    }
}

fn paper() -> Subject {
    let quotes = Arc::new(InMemoryQuotes::new());
    quotes.set(&Symbol::normalize("AAPL"), Quote::Mid(price(PRICE)));
    let config = PaperConfig { spread_pips: dec!(2), slippage_pips: Decimal::ZERO };
    Subject {
        name: "paper",
        broker: Box::new(PaperBroker::new(quotes, config)),
        inject: None,
        _keep: None,
        _keep_binance: None,
    }
}

async fn alpaca() -> Subject {
    let fake = Arc::new(FakeAlpaca::builder().price("AAPL", PRICE).start().await);
    let credentials = AlpacaCredentials::new(fake.key_id(), fake.secret_key());
    let broker = AlpacaBroker::new(AlpacaConfig::new(fake.base_url(), credentials)).unwrap();
    let inject = Arc::clone(&fake);
    Subject {
        name: "alpaca",
        broker: Box::new(broker),
        inject: Some(Box::new(move |server_error| {
            inject.fail_next(1, if server_error { Fault::ServerError } else { Fault::RateLimited })
        })),
        _keep: Some(fake),
        _keep_binance: None,
    }
}

/// Binance's client against FakeBinance. The contract's orders are in the paper broker's prices, so the fake
/// lists a symbol under the contract's name with a cent tick and 0.01 steps (the domain's lot step).
async fn binance(market: BinanceMarket) -> Subject {
    let listing = Listing::new("AAPL", "AAPL", "USDT", PRICE).step(dec!(0.01), dec!(0.01));
    let fake = match market {
        BinanceMarket::Spot => FakeBinance::spot(),
        BinanceMarket::UsdmFutures => FakeBinance::futures(),
    };
    let fake = Arc::new(fake.listing(listing).balance("USDT", dec!(100000)).start().await);
    let credentials = BinanceCredentials::new(fake.api_key(), fake.api_secret());
    let broker = BinanceBroker::new(BinanceConfig::new(fake.base_url(), market, credentials)).unwrap();
    let inject = Arc::clone(&fake);
    Subject {
        name: if market == BinanceMarket::Spot { "binance-spot" } else { "binance-futures" },
        broker: Box::new(broker),
        inject: Some(Box::new(move |server_error| {
            use testkit::binance::Fault as BinanceFault;
            inject.fail_next(1, if server_error { BinanceFault::ServerError } else { BinanceFault::RateLimited })
        })),
        _keep: None,
        _keep_binance: Some(fake),
    }
}

async fn contract(subject: Subject) {
    let name = subject.name;
    let broker = subject.broker.as_ref();

    // A market order with its bracket fills at the market, the levels travel with it.
    let market = order("contract-market-1", "AAPL", OrderEntry::Market, dec!(10));
    let ack = broker.place(&market).await.unwrap_or_else(|e| panic!("{name}: place: {e}"));
    assert!(!ack.duplicate, "{name}");
    assert_eq!(ack.state.status, OrderStatus::Filled, "{name}");
    assert_eq!(ack.state.filled_qty, dec!(10), "{name}");
    let fill = ack.state.avg_fill_price.expect("a fill price").value();
    assert!((fill - PRICE).abs() <= dec!(0.05), "{name}: filled at {fill}");
    assert_eq!(ack.state.stop_loss, Some(price(dec!(185))), "{name}");
    assert_eq!(ack.state.take_profits, vec![price(dec!(200))], "{name}");

    // The same client order id again is the same order, not a second one.
    let again = broker.place(&market).await.unwrap_or_else(|e| panic!("{name}: re-place: {e}"));
    assert!(again.duplicate, "{name}");
    assert_eq!(again.state.broker_order_id, ack.state.broker_order_id, "{name}");
    let seen = broker.order(&market.client_order_id).await.unwrap().expect("the order is known");
    assert_eq!(seen.broker_order_id, ack.state.broker_order_id, "{name}");
    assert_eq!(seen.status, OrderStatus::Filled, "{name}");

    // The id describing another order is refused rather than mapped to the first one.
    let reused = PlaceOrder { qty: Lots::new_checked(dec!(3)).unwrap(), ..market.clone() };
    let err = broker.place(&reused).await.expect_err("a reused id");
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "client_order_id_reused"), "{name}: {err:?}");

    // Moving the stop loss shows in the order; a stop above the market for a long is refused.
    let reference = ack.order_ref();
    let moved = broker.modify_stop(&reference, price(dec!(188))).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(moved.stop_loss, Some(price(dec!(188))), "{name}");
    let seen = broker.order(&market.client_order_id).await.unwrap().unwrap();
    assert_eq!(seen.stop_loss, Some(price(dec!(188))), "{name}");
    let err = broker.modify_stop(&reference, price(dec!(195))).await.expect_err("stop above the market");
    assert!(matches!(err, BrokerError::Rejected { .. }), "{name}: {err:?}");

    // Half, then the rest; then nothing is left to close.
    let half = broker.close(&reference, dec!(0.5)).await.unwrap_or_else(|e| panic!("{name}: close half: {e}"));
    assert_eq!(half.qty, dec!(5), "{name}");
    let rest = broker.close(&reference, Decimal::ONE).await.unwrap_or_else(|e| panic!("{name}: close rest: {e}"));
    assert_eq!(rest.qty, dec!(5), "{name}");
    let err = broker.close(&reference, Decimal::ONE).await.expect_err("nothing left");
    assert!(matches!(err, BrokerError::Rejected { .. }), "{name}: {err:?}");
    let err = broker.close(&reference, dec!(1.5)).await.expect_err("fraction above 1");
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "invalid_fraction"), "{name}: {err:?}");

    // A limit below the market rests, and can be cancelled.
    let limit = order("contract-limit-1", "AAPL", OrderEntry::Limit(price(dec!(180))), dec!(3));
    let limit = PlaceOrder { stop_loss: Some(price(dec!(175))), take_profits: vec![price(dec!(195))], ..limit };
    let pending = broker.place(&limit).await.unwrap_or_else(|e| panic!("{name}: limit: {e}"));
    assert_eq!(pending.state.status, OrderStatus::Pending, "{name}");
    assert_eq!(pending.state.filled_qty, Decimal::ZERO, "{name}");
    let cancelled = broker.cancel(&pending.order_ref()).await.unwrap_or_else(|e| panic!("{name}: cancel: {e}"));
    assert_eq!(cancelled.status, OrderStatus::Cancelled, "{name}");
    let seen = broker.order(&limit.client_order_id).await.unwrap().unwrap();
    assert_eq!(seen.status, OrderStatus::Cancelled, "{name}");
    // A filled order is closed, not cancelled.
    let err = broker.cancel(&reference).await.expect_err("cancel a filled order");
    assert!(matches!(err, BrokerError::Rejected { .. }), "{name}: {err:?}");

    // A symbol nobody lists is a rejection, not something to retry.
    let unknown = order("contract-unknown-1", "ZZZZ", OrderEntry::Market, dec!(1));
    let err = broker.place(&unknown).await.expect_err("unknown symbol");
    assert!(matches!(err, BrokerError::Rejected { .. }) && !err.is_retryable(), "{name}: {err:?}");
    assert_eq!(broker.order(&unknown.client_order_id).await.unwrap(), None, "{name}");

    // Transport failures are retryable, and the retry with the same id places the order once.
    if let Some(inject) = &subject.inject {
        for server_error in [true, false] {
            let id = if server_error { "contract-retry-500" } else { "contract-retry-429" };
            let retried = order(id, "AAPL", OrderEntry::Market, dec!(1));
            inject(server_error);
            let err = broker.place(&retried).await.expect_err("scripted failure");
            assert!(err.is_retryable(), "{name}: {err:?}");
            if !server_error {
                assert!(matches!(err, BrokerError::Retryable { retry_after: Some(_), .. }), "{name}: {err:?}");
            }
            let ack = broker.place(&retried).await.unwrap_or_else(|e| panic!("{name}: retry: {e}"));
            assert!(!ack.duplicate, "{name}: the failed attempt placed nothing");
        }
    }
}

#[tokio::test]
async fn paper_broker_meets_the_contract() {
    contract(paper()).await;
}

#[tokio::test]
async fn alpaca_broker_meets_the_contract() {
    contract(alpaca().await).await;
}

#[tokio::test]
async fn binance_spot_broker_meets_the_contract() {
    contract(binance(BinanceMarket::Spot).await).await;
}

#[tokio::test]
async fn binance_futures_broker_meets_the_contract() {
    contract(binance(BinanceMarket::UsdmFutures).await).await;
}
