//! Binance-specific behaviour against testkit's FakeBinance: signed requests, exchangeInfo's filters applied
//! before anything is sent, rate limits and dropped connections as retryable errors, idempotent placement, and
//! the brackets: OCO/OTOCO order lists on spot, leverage and conditional algo orders on futures.

use broker::{
    BinanceBroker, BinanceConfig, BinanceCredentials, BinanceMarket, Broker, BrokerError, ClientOrderId, OrderEntry,
    OrderStatus, PlaceOrder,
};
use chrono::{TimeZone, Utc};
use domain::{Lots, ManualClock, Price, Side, Symbol};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use testkit::binance::{BinanceRequest, FakeBinance, Fault, Listing};

fn price(value: Decimal) -> Price {
    Price::new(value).unwrap()
}

fn order(
    id: &str,
    symbol: &str,
    entry: OrderEntry,
    qty: Decimal,
    sl: Option<Decimal>,
    tp: Option<Decimal>,
) -> PlaceOrder {
    PlaceOrder {
        client_order_id: ClientOrderId::new(id).unwrap(),
        symbol: Symbol::normalize(symbol),
        side: Side::Long,
        qty: Lots::new_checked(qty).unwrap(),
        entry,
        stop_loss: sl.map(price),
        take_profits: tp.map(price).into_iter().collect(),
        leverage: None,
    }
}

/// BTCUSDT at 50,000 with Binance's spot filters (tick 0.01, step 0.00001, notional 5) and ETHUSDT at 2,000
/// with coarser ones, so rounding shows.
async fn spot() -> FakeBinance {
    FakeBinance::spot()
        .symbol("BTC", "USDT", dec!(50000))
        .listing(Listing::new("ETHUSDT", "ETH", "USDT", dec!(2000)).tick(dec!(0.5)).step(dec!(0.1), dec!(0.1)))
        .balance("USDT", dec!(100000))
        .start()
        .await
}

async fn futures() -> FakeBinance {
    FakeBinance::futures()
        .listing(Listing::new("BTCUSDT", "BTC", "USDT", dec!(50000)).tick(dec!(0.1)).step(dec!(0.001), dec!(0.001)))
        .balance("USDT", dec!(10000))
        .start()
        .await
}

fn client(fake: &FakeBinance, market: BinanceMarket) -> BinanceBroker {
    let credentials = BinanceCredentials::new(fake.api_key(), fake.api_secret());
    BinanceBroker::new(BinanceConfig::new(fake.base_url(), market, credentials)).unwrap()
}

fn posts(fake: &FakeBinance) -> Vec<BinanceRequest> {
    fake.requests().into_iter().filter(|r| r.method == "POST").collect()
}

#[tokio::test]
async fn requests_are_signed_and_a_wrong_secret_is_rejected_not_retried() {
    let fake = spot().await;
    let broker = client(&fake, BinanceMarket::Spot);
    let ack = broker.place(&order("signed-1", "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None)).await.unwrap();
    assert_eq!(ack.state.status, OrderStatus::Filled);
    assert_eq!(ack.state.avg_fill_price, Some(price(dec!(50000))));
    let post = posts(&fake).pop().unwrap();
    assert_eq!(post.path, "/api/v3/order");
    assert_eq!(post.header("x-mbx-apikey"), Some(fake.api_key()));
    assert_eq!(post.param("newClientOrderId").as_deref(), Some("signed-1"));
    assert_eq!(post.param("quantity").as_deref(), Some("0.01"));
    assert!(post.param("signature").is_some() && post.param("timestamp").is_some());
    assert_eq!(post.param("recvWindow").as_deref(), Some("5000"));

    let secret = "not-the-secret-0123456789";
    let wrong = BinanceBroker::new(BinanceConfig::new(
        fake.base_url(),
        BinanceMarket::Spot,
        BinanceCredentials::new(fake.api_key(), secret),
    ))
    .unwrap();
    let err = wrong.place(&order("signed-2", "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None)).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-1022"), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!format!("{err:?}").contains(secret));
    assert_eq!(fake.requests().last().unwrap().status, Some(401));
    assert_eq!(posts(&fake).len(), 1, "nothing was placed with the wrong secret");

    let unknown_key = BinanceBroker::new(BinanceConfig::new(
        fake.base_url(),
        BinanceMarket::Spot,
        BinanceCredentials::new("someone-else", fake.api_secret()),
    ))
    .unwrap();
    let err = unknown_key.order(&ClientOrderId::new("signed-1").unwrap()).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-2015"), "{err:?}");
}

#[tokio::test]
async fn a_timestamp_outside_the_receive_window_is_refused() {
    let noon = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    let exchange = ManualClock::new(noon);
    let fake = FakeBinance::spot().symbol("BTC", "USDT", dec!(50000)).clock(Arc::new(exchange.clone())).start().await;
    let with_clock = |clock: ManualClock| {
        let credentials = BinanceCredentials::new(fake.api_key(), fake.api_secret());
        let mut config = BinanceConfig::new(fake.base_url(), BinanceMarket::Spot, credentials);
        config.clock = Arc::new(clock);
        BinanceBroker::new(config).unwrap()
    };
    let id = ClientOrderId::new("window-1").unwrap();
    // Four seconds behind is inside Binance's default 5 s window; six is not.
    let behind = ManualClock::new(noon - chrono::Duration::seconds(4));
    assert_eq!(with_clock(behind.clone()).order(&id).await.unwrap(), None);
    behind.advance(chrono::Duration::seconds(-2));
    let err = with_clock(behind).order(&id).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-1021"), "{err:?}");
    let ahead = ManualClock::new(noon + chrono::Duration::seconds(2));
    let err = with_clock(ahead).order(&id).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-1021"), "{err:?}");
}

#[tokio::test]
async fn filters_refuse_and_round_before_anything_is_sent() {
    let fake = spot().await;
    let broker = client(&fake, BinanceMarket::Spot);

    // 0.05 ETH is below LOT_SIZE's minimum of 0.1 once rounded down to the 0.1 step.
    let err = broker.place(&order("lot-1", "ETHUSDT", OrderEntry::Market, dec!(0.05), None, None)).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "below_min_qty"), "{err:?}");
    // 0.01 BTC at a limit of 400 is 4 USDT, below the 5 USDT NOTIONAL.
    let cheap = order("notional-1", "BTCUSDT", OrderEntry::Limit(price(dec!(400))), dec!(0.01), None, None);
    let err = broker.place(&cheap).await.unwrap_err();
    assert!(
        matches!(&err, BrokerError::Rejected { code, reason } if code == "below_min_notional" && reason.contains("NOTIONAL")),
        "{err:?}"
    );
    // A symbol Binance does not list.
    let err = broker.place(&order("unknown-1", "FOOBAR", OrderEntry::Market, dec!(1), None, None)).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "unknown_symbol"), "{err:?}");
    assert!(posts(&fake).is_empty(), "no order reached Binance");

    // 0.55 ETH goes out as 0.5 (the step), a limit of 1950.26 as 1950.5 (the tick).
    let limit = order("round-1", "ETHUSDT", OrderEntry::Limit(price(dec!(1950.26))), dec!(0.55), None, None);
    let ack = broker.place(&limit).await.unwrap();
    assert_eq!(ack.state.status, OrderStatus::Pending);
    assert_eq!(ack.state.qty, dec!(0.5));
    let post = posts(&fake).pop().unwrap();
    assert_eq!(post.param("quantity").as_deref(), Some("0.5"));
    assert_eq!(post.param("price").as_deref(), Some("1950.5"));
    assert_eq!(post.param("timeInForce").as_deref(), Some("GTC"));
    // Placing it again is the same order, by the same rounding.
    let again = broker.place(&limit).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.state.broker_order_id, ack.state.broker_order_id);
}

#[tokio::test]
async fn the_weight_limit_is_retryable_with_binances_retry_after() {
    // exchangeInfo weighs 20, an order query 4, the price 2: the third request of the first placement is over.
    let fake = FakeBinance::spot()
        .symbol("BTC", "USDT", dec!(50000))
        .balance("USDT", dec!(1000))
        .weight_limit(25)
        .start()
        .await;
    let broker = client(&fake, BinanceMarket::Spot);
    let err =
        broker.place(&order("weight-1", "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None)).await.unwrap_err();
    assert!(matches!(err, BrokerError::Retryable { retry_after: Some(wait), .. } if wait.as_secs() >= 1), "{err:?}");
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.status, Some(429));
    assert!(posts(&fake).is_empty());
    assert_eq!(fake.used_weight(), 24);
}

#[tokio::test]
async fn dropped_connections_are_retryable_and_a_lost_answer_is_not_a_second_order() {
    let fake = spot().await;
    let broker = client(&fake, BinanceMarket::Spot);
    let first = order("drop-1", "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None);
    fake.fail_next(1, Fault::Disconnect);
    let err = broker.place(&first).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    assert!(posts(&fake).is_empty(), "the query met the closed connection; nothing was placed");
    assert!(!broker.place(&first).await.unwrap().duplicate);

    // The placement itself is carried out, then its answer is lost: the retry finds the first order.
    let lost = order("drop-2", "BTCUSDT", OrderEntry::Market, dec!(0.02), None, None);
    fake.fail_on("POST", "/api/v3/order", Fault::DropResponse);
    let err = broker.place(&lost).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let retried = broker.place(&lost).await.unwrap();
    assert!(retried.duplicate);
    let placed: Vec<_> = fake.orders().into_iter().filter(|o| o["clientOrderId"] == "drop-2").collect();
    assert_eq!(placed.len(), 1, "one order, however often the answer was lost");
    assert_eq!(retried.state.broker_order_id, placed[0]["orderId"].to_string());
    assert_eq!(retried.state.filled_qty, dec!(0.02));
}

#[tokio::test]
async fn a_duplicate_id_returns_the_first_order_and_long_ids_are_hashed() {
    let fake = futures().await;
    let broker = client(&fake, BinanceMarket::UsdmFutures);
    let long_id = format!("sp-{}", "7".repeat(45));
    let first = order(&long_id, "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None);
    let ack = broker.place(&first).await.unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ack.state.client_order_id.as_str(), long_id);
    let again = broker.place(&first).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.state.broker_order_id, ack.state.broker_order_id);
    let orders = fake.orders();
    assert_eq!(orders.len(), 1);
    let sent = orders[0]["clientOrderId"].as_str().unwrap().to_string();
    assert_eq!(sent.len(), 36);
    assert_eq!(fake.position("BTCUSDT"), dec!(0.01));

    // Binance's own duplicate answer (the query missed a concurrent placement) still gives the first order.
    fake.fail_next(1, Fault::Error { status: 400, code: -2013, msg: "Order does not exist.".to_string() });
    let raced = broker.place(&first).await.unwrap();
    assert!(raced.duplicate);
    assert_eq!(raced.state.broker_order_id, ack.state.broker_order_id);
    assert_eq!(fake.orders().len(), 1);
}

#[tokio::test]
async fn futures_set_the_leverage_then_place_reduce_only_stop_and_take_profit_legs() {
    let fake = futures().await;
    let broker = client(&fake, BinanceMarket::UsdmFutures);
    let mut long = order("fut-1", "BTCUSDT", OrderEntry::Market, dec!(0.1), Some(dec!(48000.04)), Some(dec!(55000)));
    long.leverage = Some(10);
    let ack = broker.place(&long).await.unwrap();
    assert_eq!(fake.leverage("BTCUSDT"), Some(10));
    assert_eq!(ack.state.status, OrderStatus::Filled);
    assert_eq!(ack.state.stop_loss, Some(price(dec!(48000))), "rounded to the 0.1 tick");
    assert_eq!(ack.state.take_profits, vec![price(dec!(55000))]);
    let paths: Vec<String> = posts(&fake).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/fapi/v1/leverage", "/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/algoOrder"]);
    let algos = fake.algo_orders();
    let stop = algos.iter().find(|a| a["type"] == "STOP_MARKET").unwrap();
    assert_eq!(stop["side"], "SELL");
    assert_eq!(stop["triggerPrice"], "48000");
    assert_eq!(stop["quantity"], "0.1");
    assert_eq!(stop["reduceOnly"], true);
    assert_eq!(stop["algoType"], "CONDITIONAL");
    let tp = algos.iter().find(|a| a["type"] == "TAKE_PROFIT_MARKET").unwrap();
    assert_eq!(tp["triggerPrice"], "55000");

    // Moving the stop replaces the leg: a new one at the new level, the old one cancelled.
    let moved = broker.modify_stop(&ack.order_ref(), price(dec!(49000))).await.unwrap();
    assert_eq!(moved.stop_loss, Some(price(dec!(49000))));
    let algos = fake.algo_orders();
    let stops: Vec<_> = algos.iter().filter(|a| a["type"] == "STOP_MARKET").collect();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0]["algoStatus"], "CANCELED");
    assert_eq!(stops[1]["algoStatus"], "NEW");
    assert_eq!(stops[1]["triggerPrice"], "49000");
    // A stop above the market for a long is Binance's "would immediately trigger", and the old leg stays.
    let err = broker.modify_stop(&ack.order_ref(), price(dec!(51000))).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-2021"), "{err:?}");
    assert_eq!(broker.order(&long.client_order_id).await.unwrap().unwrap().stop_loss, Some(price(dec!(49000))));

    // A partial close is a reduce-only market order; the legs shrink to what is left.
    let half = broker.close(&ack.order_ref(), dec!(0.5)).await.unwrap();
    assert_eq!((half.qty, half.remaining), (dec!(0.05), Some(dec!(0.05))));
    let close = posts(&fake).into_iter().rev().find(|r| r.path == "/fapi/v1/order").unwrap();
    assert_eq!(close.param("reduceOnly").as_deref(), Some("true"));
    assert_eq!(close.param("side").as_deref(), Some("SELL"));
    assert_eq!(fake.position("BTCUSDT"), dec!(0.05));
    let open: Vec<_> = fake.algo_orders().into_iter().filter(|a| a["algoStatus"] == "NEW").collect();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|a| a["quantity"] == "0.05"), "{open:?}");

    // Too little margin for the notional at this leverage: Binance's -2019.
    let mut big = order("fut-2", "BTCUSDT", OrderEntry::Market, dec!(5), None, None);
    big.leverage = Some(2);
    let err = broker.place(&big).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-2019"), "{err:?}");
}

#[tokio::test]
async fn spot_brackets_are_an_oco_after_a_market_fill_and_an_otoco_for_a_limit() {
    let fake = spot().await;
    let broker = client(&fake, BinanceMarket::Spot);
    let market = order("oco-1", "BTCUSDT", OrderEntry::Market, dec!(0.1), Some(dec!(48000)), Some(dec!(55000)));
    let ack = broker.place(&market).await.unwrap();
    assert_eq!(ack.state.status, OrderStatus::Filled);
    assert_eq!(ack.state.stop_loss, Some(price(dec!(48000))));
    assert_eq!(ack.state.take_profits, vec![price(dec!(55000))]);
    let oco = posts(&fake).into_iter().find(|r| r.path == "/api/v3/orderList/oco").unwrap();
    assert_eq!(oco.param("side").as_deref(), Some("SELL"));
    assert_eq!(oco.param("quantity").as_deref(), Some("0.1"));
    assert_eq!(oco.param("aboveType").as_deref(), Some("LIMIT_MAKER"));
    assert_eq!(oco.param("abovePrice").as_deref(), Some("55000"));
    assert_eq!(oco.param("belowType").as_deref(), Some("STOP_LOSS"));
    assert_eq!(oco.param("belowStopPrice").as_deref(), Some("48000"));
    assert_eq!(fake.balance("BTC"), dec!(0.1));

    // The stop moves by replacing the OCO; a stop above the market is refused and the old OCO stands.
    let moved = broker.modify_stop(&ack.order_ref(), price(dec!(49000))).await.unwrap();
    assert_eq!(moved.stop_loss, Some(price(dec!(49000))));
    assert_eq!(moved.take_profits, vec![price(dec!(55000))]);
    let err = broker.modify_stop(&ack.order_ref(), price(dec!(51000))).await.unwrap_err();
    assert!(matches!(err, BrokerError::Rejected { .. }), "{err:?}");
    let seen = broker.order(&market.client_order_id).await.unwrap().unwrap();
    assert_eq!(seen.stop_loss, Some(price(dec!(49000))));
    let open_legs = fake.open_orders();
    assert_eq!(open_legs.len(), 2, "one OCO: {open_legs:?}");

    // A limit entry takes its legs as an OTOCO: pending until the entry fills, then working.
    let limit = order(
        "otoco-1",
        "BTCUSDT",
        OrderEntry::Limit(price(dec!(45000))),
        dec!(0.1),
        Some(dec!(44000)),
        Some(dec!(47000)),
    );
    let pending = broker.place(&limit).await.unwrap();
    assert_eq!(pending.state.status, OrderStatus::Pending);
    assert_eq!(pending.state.stop_loss, Some(price(dec!(44000))));
    let otoco = posts(&fake).into_iter().find(|r| r.path == "/api/v3/orderList/otoco").unwrap();
    assert_eq!(otoco.param("workingType").as_deref(), Some("LIMIT"));
    assert_eq!(otoco.param("workingClientOrderId").as_deref(), Some("otoco-1"));
    assert_eq!(otoco.param("pendingBelowStopPrice").as_deref(), Some("44000"));
    let legs: Vec<_> =
        fake.orders().into_iter().filter(|o| o["orderListId"] == pending_list(&fake, "otoco-1")).collect();
    assert!(legs.iter().filter(|o| o["clientOrderId"] != "otoco-1").all(|o| o["status"] == "PENDING_NEW"), "{legs:?}");
    fake.set_price("BTCUSDT", dec!(44900));
    let filled = broker.order(&limit.client_order_id).await.unwrap().unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.stop_loss, Some(price(dec!(44000))));
    assert_eq!(filled.take_profits, vec![price(dec!(47000))]);
    let legs: Vec<_> =
        fake.orders().into_iter().filter(|o| o["orderListId"] == pending_list(&fake, "otoco-1")).collect();
    assert!(legs.iter().filter(|o| o["clientOrderId"] != "otoco-1").all(|o| o["status"] == "NEW"), "{legs:?}");

    // Closing all of the first order cancels its OCO and sells what it bought.
    let all = broker.close(&ack.order_ref(), Decimal::ONE).await.unwrap();
    assert_eq!((all.qty, all.remaining), (dec!(0.1), Some(Decimal::ZERO)));
    let seen = broker.order(&market.client_order_id).await.unwrap().unwrap();
    assert_eq!(seen.stop_loss, None);
    assert_eq!(fake.balance("BTC"), dec!(0.1), "the second order's coins remain");
}

fn pending_list(fake: &FakeBinance, entry: &str) -> serde_json::Value {
    fake.orders().into_iter().find(|o| o["clientOrderId"] == entry).unwrap()["orderListId"].clone()
}

#[tokio::test]
async fn insufficient_balance_is_a_rejection_and_secrets_stay_out_of_debug() {
    let fake = FakeBinance::spot().symbol("BTC", "USDT", dec!(50000)).balance("USDT", dec!(100)).start().await;
    let broker = client(&fake, BinanceMarket::Spot);
    let err = broker.place(&order("poor-1", "BTCUSDT", OrderEntry::Market, dec!(0.01), None, None)).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Rejected { code, .. } if code == "-2010"), "{err:?}");
    let config = BinanceConfig::new(
        fake.base_url(),
        BinanceMarket::Spot,
        BinanceCredentials::new("visible-key-123", "hidden-secret-456"),
    );
    let shown = format!("{config:?} {:?}", BinanceBroker::new(config.clone()).unwrap());
    assert!(!shown.contains("hidden-secret-456") && !shown.contains("visible-key-123"), "{shown}");
}

#[tokio::test]
async fn a_retry_after_the_legs_failed_places_the_legs_not_a_second_entry() {
    let fake = futures().await;
    let broker = client(&fake, BinanceMarket::UsdmFutures);
    let long = order("legs-1", "BTCUSDT", OrderEntry::Market, dec!(0.1), Some(dec!(48000)), Some(dec!(55000)));
    fake.fail_on("POST", "/fapi/v1/algoOrder", Fault::ServerError);
    let err = broker.place(&long).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(fake.algo_orders().is_empty());
    let ack = broker.place(&long).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(ack.state.stop_loss, Some(price(dec!(48000))));
    assert_eq!(ack.state.take_profits, vec![price(dec!(55000))]);
    assert_eq!(fake.orders().len(), 1, "one entry");
    assert_eq!(fake.algo_orders().len(), 2);
    // Once the bracket stands, placing again changes nothing.
    broker.place(&long).await.unwrap();
    assert_eq!(fake.algo_orders().len(), 2);

    // On spot the OCO follows the coins the first attempt bought.
    let fake = spot().await;
    let broker = client(&fake, BinanceMarket::Spot);
    let long = order("legs-2", "BTCUSDT", OrderEntry::Market, dec!(0.1), Some(dec!(48000)), Some(dec!(55000)));
    fake.fail_on("POST", "/api/v3/orderList/oco", Fault::Disconnect);
    assert!(broker.place(&long).await.unwrap_err().is_retryable());
    let ack = broker.place(&long).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(ack.state.stop_loss, Some(price(dec!(48000))));
    assert_eq!(fake.open_orders().len(), 2, "the OCO's two legs");
}
