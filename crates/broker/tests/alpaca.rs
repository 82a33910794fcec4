//! Alpaca-specific behaviour against testkit's FakeAlpaca: the wire format of a bracket order, how
//! Alpaca's error bodies map to our errors, idempotency across a lost response, and keys kept secret.

use broker::{
    AlpacaBroker, AlpacaConfig, AlpacaCredentials, Broker, BrokerError, ClientOrderId, OrderEntry, OrderStatus,
    PlaceOrder,
};
use domain::{Lots, Price, Side, Symbol};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::time::Duration;
use testkit::alpaca::{FakeAlpaca, Fault};

fn price(value: Decimal) -> Price {
    Price::new(value).unwrap()
}

fn bracket(id: &str, symbol: &str, side: Side, sl: Decimal, tp: Decimal) -> PlaceOrder {
    PlaceOrder {
        client_order_id: ClientOrderId::new(id).unwrap(),
        symbol: Symbol::normalize(symbol),
        side,
        qty: Lots::new_checked(dec!(2)).unwrap(),
        entry: OrderEntry::Market,
        stop_loss: Some(price(sl)),
        take_profits: vec![price(tp)],
        leverage: None,
    }
}

fn client(fake: &FakeAlpaca) -> AlpacaBroker {
    let credentials = AlpacaCredentials::new(fake.key_id(), fake.secret_key());
    AlpacaBroker::new(AlpacaConfig::new(fake.base_url(), credentials)).unwrap()
}

#[tokio::test]
async fn a_bracket_order_goes_out_in_alpacas_wire_format() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).price("BTC/USD", dec!(65000)).start().await;
    let broker = client(&fake);
    broker.place(&bracket("wire-1", "AAPL", Side::Long, dec!(185), dec!(200))).await.unwrap();
    let requests = fake.requests();
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/v2/orders");
    assert_eq!(post.header("apca-api-key-id"), Some(fake.key_id()));
    assert_eq!(post.header("apca-api-secret-key"), Some(fake.secret_key()));
    let body = post.body.clone().unwrap();
    assert_eq!(body["order_class"], "bracket");
    assert_eq!(body["client_order_id"], "wire-1");
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["qty"], "2");
    assert_eq!(body["side"], "buy");
    assert_eq!(body["type"], "market");
    assert_eq!(body["time_in_force"], "gtc");
    assert_eq!(body["take_profit"]["limit_price"], "200");
    assert_eq!(body["stop_loss"]["stop_price"], "185");

    // Crypto goes by Alpaca's BASE/QUOTE name and comes back under ours.
    let ack = broker.place(&bracket("wire-2", "BTCUSD", Side::Short, dec!(66000), dec!(60000))).await.unwrap();
    assert_eq!(ack.state.symbol, Symbol::normalize("BTCUSD"));
    assert_eq!(ack.state.side, Side::Short);
    let body = fake.requests().into_iter().filter(|r| r.method == "POST").nth(1).unwrap().body.unwrap();
    assert_eq!(body["symbol"], "BTC/USD");
    assert_eq!(body["side"], "sell");
    assert_eq!(fake.position("BTCUSD"), Some(dec!(-2)));

    // A stop loss alone is a one-triggers-other order; Alpaca brackets need both legs.
    let only_sl = PlaceOrder { take_profits: vec![], ..bracket("wire-3", "AAPL", Side::Long, dec!(185), dec!(200)) };
    let ack = broker.place(&only_sl).await.unwrap();
    assert_eq!(ack.state.stop_loss, Some(price(dec!(185))));
    assert!(ack.state.take_profits.is_empty());
    let body = fake.requests().into_iter().filter(|r| r.method == "POST").nth(2).unwrap().body.unwrap();
    assert_eq!(body["order_class"], "oto");
}

#[tokio::test]
async fn forex_is_refused_before_any_request() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).start().await;
    let err = client(&fake).place(&bracket("fx-1", "EURUSD", Side::Long, dec!(1.08), dec!(1.09))).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "unsupported_symbol"), "{err:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn alpaca_error_bodies_map_to_rejections_with_their_code_and_message() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).start().await;
    let broker = client(&fake);

    // A take profit below the price of a buy: the fake's 422 with Alpaca's rule.
    let err = broker.place(&bracket("map-1", "AAPL", Side::Long, dec!(185), dec!(189))).await.unwrap_err();
    assert_eq!(
        err,
        BrokerError::Rejected {
            code: "40010001".into(),
            reason: "take_profit.limit_price must be >= base_price + 0.01".into()
        }
    );

    fake.fail_next(1, Fault::Error { status: 403, code: 40310000, message: "insufficient buying power".into() });
    let err = broker.place(&bracket("map-2", "AAPL", Side::Long, dec!(185), dec!(200))).await.unwrap_err();
    assert_eq!(err, BrokerError::Rejected { code: "40310000".into(), reason: "insufficient buying power".into() });
    assert!(!err.is_retryable());

    fake.fail_next(1, Fault::Error { status: 503, code: 50310000, message: "service unavailable".into() });
    let err = broker.place(&bracket("map-3", "AAPL", Side::Long, dec!(185), dec!(200))).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    fake.fail_next(1, Fault::Disconnect);
    let err = broker.place(&bracket("map-4", "AAPL", Side::Long, dec!(185), dec!(200))).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(fake.orders().is_empty(), "no failure above placed an order");

    // Unknown client order id: Alpaca's 404 is "no such order", not an error.
    assert_eq!(broker.order(&ClientOrderId::new("never-sent").unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn a_lost_response_then_a_retry_gives_one_order() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).start().await;
    let broker = client(&fake);
    let order = bracket("lost-1", "AAPL", Side::Long, dec!(185), dec!(200));
    fake.fail_next(1, Fault::DropResponse);
    let err = broker.place(&order).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(fake.orders().len(), 1, "the fake carried the order out before dropping the answer");

    let ack = broker.place(&order).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(ack.state.status, OrderStatus::Filled);
    assert_eq!(fake.orders().len(), 1);
    assert_eq!(fake.position("AAPL"), Some(dec!(2)));
}

#[tokio::test]
async fn the_rate_limit_is_retryable_with_the_reset_time() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).rate_limit(3).start().await;
    let broker = client(&fake);
    for n in 0..3 {
        assert_eq!(broker.order(&ClientOrderId::new(format!("rl-{n}")).unwrap()).await.unwrap(), None);
    }
    let err = broker.order(&ClientOrderId::new("rl-3").unwrap()).await.unwrap_err();
    match err {
        BrokerError::Retryable { retry_after: Some(wait), .. } => assert!(wait <= Duration::from_secs(60), "{wait:?}"),
        other => panic!("expected a retryable 429 with a reset time, got {other:?}"),
    }
    assert_eq!(fake.rate_limited_count(), 1);
}

#[tokio::test]
async fn keys_never_appear_in_errors_or_debug_output() {
    let fake = FakeAlpaca::start().await;
    let secret = fake.secret_key().to_string();
    let key_id = fake.key_id().to_string();
    let leaks = |text: &str| text.contains(&secret) || text.contains(&key_id);

    // Wrong secret: Alpaca's 401, which names neither key.
    let wrong = AlpacaCredentials::new(key_id.clone(), "not-the-secret-but-also-secret");
    let broker = AlpacaBroker::new(AlpacaConfig::new(fake.base_url(), wrong)).unwrap();
    let err = broker.order(&ClientOrderId::new("x").unwrap()).await.unwrap_err();
    assert_eq!(err, BrokerError::Rejected { code: "40110000".into(), reason: "request is not authorized".into() });
    let debug = format!("{broker:?}");
    assert!(!leaks(&debug) && !debug.contains("not-the-secret"), "{debug}");

    // An error message that echoes the keys is scrubbed.
    let broker = client(&fake);
    fake.fail_next(1, Fault::Error { status: 422, code: 40010001, message: format!("bad key {key_id}/{secret}") });
    let err = broker.order(&ClientOrderId::new("y").unwrap()).await.unwrap_err();
    assert!(!leaks(&format!("{err} {err:?}")), "{err:?}");
    assert!(!leaks(&format!("{broker:?}")));

    // A connection error carries no key either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let broker =
        AlpacaBroker::new(AlpacaConfig::new(base, AlpacaCredentials::new(key_id.clone(), secret.clone()))).unwrap();
    let err = broker.order(&ClientOrderId::new("z").unwrap()).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!leaks(&format!("{err} {err:?}")), "{err:?}");
}

#[tokio::test]
async fn modify_stop_without_a_stop_leg_is_rejected() {
    let fake = FakeAlpaca::builder().price("AAPL", dec!(190)).start().await;
    let broker = client(&fake);
    let plain = PlaceOrder {
        stop_loss: None,
        take_profits: vec![],
        ..bracket("plain-1", "AAPL", Side::Long, dec!(185), dec!(200))
    };
    let ack = broker.place(&plain).await.unwrap();
    let err = broker.modify_stop(&ack.order_ref(), price(dec!(180))).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "no_stop_leg"), "{err:?}");
}
