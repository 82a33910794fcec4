//! The JSON Discord receives for each rendered message: field names and values, custom ids, styles.

use chrono::{TimeZone, Utc};
use discord::render::{
    self, CustomId, CustomIdError, ENGINE_TITLE, GREEN, GREY, RED, SignalView, TradeModalDefaults, parse_custom_id,
};
use domain::{
    CloseReason, Closing, InstrumentRegistry, Lots, NewTrade, Price, RateBook, Side, Timeframe, Trade, TradeId, UserId,
    pnl::outcome,
};
use rust_decimal_macros::dec;
use serde_json::{Value, json};

fn price(text: &str) -> Price {
    Price::parse(text).unwrap()
}

fn eurusd_long() -> SignalView {
    SignalView {
        notification_id: 42,
        title: ENGINE_TITLE.into(),
        instrument: InstrumentRegistry::global().get("EURUSD").unwrap().clone(),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: price("1.0854"),
        stop_loss: price("1.08"),
        take_profit: price("1.0962"),
        confidence: Some(dec!(0.785)),
        model_version: Some("reversal-v3".into()),
    }
}

fn btc_short() -> SignalView {
    SignalView {
        notification_id: 7,
        title: "Whale Alerts".into(),
        instrument: InstrumentRegistry::global().get("BTCUSDT").unwrap().clone(),
        timeframe: None,
        side: Side::Short,
        entry: price("60000"),
        stop_loss: price("61200"),
        take_profit: price("57000"),
        confidence: None,
        model_version: None,
    }
}

fn fields_of(embed: &Value) -> Vec<(String, String)> {
    embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["value"].as_str().unwrap().to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}: {fields:?}")).1
}

#[test]
fn signal_embed_has_the_designed_fields_in_order() {
    let message = render::signal_message(&eurusd_long());
    let embeds = serde_json::to_value(&message.embeds).unwrap();
    assert_eq!(embeds.as_array().unwrap().len(), 1);
    let embed = &embeds[0];
    assert_eq!(embed["title"], "REVERSAL SIGNAL DETECTED");
    assert_eq!(embed["color"], GREEN);
    assert_eq!(embed["type"], "rich");
    let fields = fields_of(embed);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Pair", "Timeframe", "Signal", "Confidence", "Entry", "Stop Loss", "Take Profit", "R:R", "Model"]
    );
    assert_eq!(field(&fields, "Pair"), "EURUSD");
    assert_eq!(field(&fields, "Timeframe"), "1h");
    assert_eq!(field(&fields, "Signal"), "LONG");
    assert_eq!(field(&fields, "Confidence"), "78.5%");
    assert_eq!(field(&fields, "Entry"), "1.08540");
    assert_eq!(field(&fields, "Stop Loss"), "1.08000 (54 pips)");
    assert_eq!(field(&fields, "Take Profit"), "1.09620 (108 pips)");
    assert_eq!(field(&fields, "R:R"), "1:2.00");
    assert_eq!(field(&fields, "Model"), "reversal-v3");
    assert!(embed["fields"].as_array().unwrap().iter().all(|f| f["inline"] == true));
}

#[test]
fn instruments_without_pips_show_price_distance_and_percent() {
    let message = render::signal_message(&btc_short());
    let embed = serde_json::to_value(&message.embeds[0]).unwrap();
    assert_eq!(embed["title"], "Whale Alerts");
    assert_eq!(embed["color"], RED);
    let fields = fields_of(&embed);
    assert_eq!(field(&fields, "Signal"), "SHORT");
    assert_eq!(field(&fields, "Timeframe"), "—");
    assert_eq!(field(&fields, "Confidence"), "—");
    assert_eq!(field(&fields, "Model"), "—");
    assert_eq!(field(&fields, "Entry"), "60000.00");
    assert_eq!(field(&fields, "Stop Loss"), "61200.00 (1200.00, 2%)");
    assert_eq!(field(&fields, "Take Profit"), "57000.00 (3000.00, 5%)");
    assert_eq!(field(&fields, "R:R"), "1:2.50");
}

#[test]
fn jpy_and_gold_pips_follow_the_instrument() {
    let mut view = eurusd_long();
    view.instrument = InstrumentRegistry::global().get("USDJPY").unwrap().clone();
    (view.entry, view.stop_loss, view.take_profit) = (price("150.00"), price("149.755"), price("150.5"));
    let fields = fields_of(&serde_json::to_value(&render::signal_message(&view).embeds[0]).unwrap());
    assert_eq!(field(&fields, "Stop Loss"), "149.755 (24.5 pips)");
    assert_eq!(field(&fields, "Take Profit"), "150.500 (50 pips)");
    view.instrument = InstrumentRegistry::global().get("XAUUSD").unwrap().clone();
    (view.entry, view.stop_loss, view.take_profit) = (price("2000"), price("1999.9"), price("2010"));
    view.confidence = Some(dec!(1));
    let fields = fields_of(&serde_json::to_value(&render::signal_message(&view).embeds[0]).unwrap());
    assert_eq!(field(&fields, "Stop Loss"), "1999.90 (1 pip)");
    assert_eq!(field(&fields, "Take Profit"), "2010.00 (100 pips)");
    assert_eq!(field(&fields, "R:R"), "1:100.00");
    assert_eq!(field(&fields, "Confidence"), "100%");
}

#[test]
fn buttons_carry_the_notification_id_in_one_row() {
    let components = serde_json::to_value(render::signal_message(&eurusd_long()).components).unwrap();
    assert_eq!(
        components,
        json!([{
            "type": 1,
            "components": [
                {"type": 2, "style": 3, "label": "Open Trade", "custom_id": "open:42"},
                {"type": 2, "style": 2, "label": "Ignore", "custom_id": "ignore:42"},
                {"type": 2, "style": 1, "label": "Details", "custom_id": "details:42"},
            ]
        }])
    );
}

#[test]
fn ignored_message_keeps_the_embed_and_disables_the_buttons() {
    let view = eurusd_long();
    let ignored = render::ignored_message(&view);
    let embed = serde_json::to_value(&ignored.embeds[0]).unwrap();
    assert_eq!(embed["title"], ENGINE_TITLE);
    assert_eq!(embed["color"], GREY);
    assert_eq!(embed["footer"]["text"], "Ignored");
    assert_eq!(fields_of(&embed), fields_of(&serde_json::to_value(&render::signal_message(&view).embeds[0]).unwrap()));
    let buttons = serde_json::to_value(&ignored.components).unwrap();
    let buttons = buttons[0]["components"].as_array().unwrap();
    assert_eq!(buttons.len(), 3);
    assert!(buttons.iter().all(|b| b["disabled"] == true), "{buttons:?}");
    assert_eq!(buttons[0]["custom_id"], "open:42");

    let settled = render::settled_message(&view, "Trade #9 opened");
    assert_eq!(serde_json::to_value(&settled.embeds[0]).unwrap()["footer"]["text"], "Trade #9 opened");
    assert_eq!(render::disable_buttons(&render::signal_message(&view).components), ignored.components);
}

#[test]
fn trade_modal_has_the_designed_inputs() {
    let defaults = TradeModalDefaults {
        entry: price("1.0854"),
        lots: Lots::parse("0.5").unwrap(),
        stop_loss: Some(price("1.08")),
        take_profit: None,
    };
    let modal = serde_json::to_value(render::trade_modal(42, "eur/usd", Side::Long, &defaults)).unwrap();
    assert_eq!(modal["type"], 9);
    assert_eq!(modal["data"]["custom_id"], "trade:42");
    assert_eq!(modal["data"]["title"], "Open EURUSD LONG");
    let labels = modal["data"]["components"].as_array().unwrap();
    assert_eq!(labels.len(), 5);
    let inputs: Vec<&Value> = labels
        .iter()
        .map(|l| {
            assert_eq!(l["type"], 18, "{l}");
            assert!(!l["label"].as_str().unwrap().is_empty());
            &l["component"]
        })
        .collect();
    let ids: Vec<&str> = inputs.iter().map(|i| i["custom_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["entry", "lots", "stop_loss", "take_profit", "notes"]);
    assert!(inputs.iter().all(|i| i["type"] == 4));
    assert_eq!(inputs[0]["value"], "1.0854");
    assert_eq!(inputs[1]["value"], "0.5");
    assert_eq!(inputs[2]["value"], "1.08");
    assert!(inputs[3].get("value").is_none());
    for input in &inputs[..4] {
        assert_eq!(input["style"], 1);
        assert_eq!(input["required"], true);
    }
    assert_eq!(inputs[4]["style"], 2);
    assert_eq!(inputs[4]["required"], false);
    assert!(inputs[4].get("value").is_none());
}

fn closed_trade(symbol: &str, side: Side, entry: &str, exit: &str, lots: &str, reason: CloseReason) -> Trade {
    let opened = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let closed = opened + chrono::Duration::minutes(135);
    let lots = Lots::parse(lots).unwrap();
    let new = NewTrade::new(UserId(1), symbol, side, price(entry), lots, None, None, opened).unwrap();
    let mut trade = Trade::from_new(TradeId(12), new);
    let instrument = InstrumentRegistry::global().get(symbol).unwrap();
    let o = outcome(instrument, side, price(entry), price(exit), lots, &RateBook::default(), "USD");
    trade.close(&Closing::new(price(exit), reason, closed, &o)).unwrap();
    trade
}

#[test]
fn closed_trades_report_pips_money_and_duration() {
    let trade = closed_trade("EURUSD", Side::Long, "1.0854", "1.0962", "0.5", CloseReason::TpHit);
    let embed = serde_json::to_value(&render::trade_closed_message(&trade, "USD").unwrap().embeds[0]).unwrap();
    assert_eq!(embed["title"], "TAKE PROFIT HIT · EURUSD LONG");
    assert_eq!(embed["color"], GREEN);
    let fields = fields_of(&embed);
    assert_eq!(field(&fields, "Pips"), "+108 pips");
    assert_eq!(field(&fields, "Profit"), "+$540.00");
    assert_eq!(field(&fields, "Duration"), "2h 15m");
    assert_eq!(field(&fields, "Result"), "WIN");
    assert_eq!(field(&fields, "Exit"), "1.09620");

    let trade = closed_trade("EURUSD", Side::Long, "1.0854", "1.0800", "1", CloseReason::SlHit);
    let embed = serde_json::to_value(&render::trade_closed_message(&trade, "USD").unwrap().embeds[0]).unwrap();
    assert_eq!(embed["title"], "STOP LOSS HIT · EURUSD LONG");
    assert_eq!(embed["color"], RED);
    let fields = fields_of(&embed);
    assert_eq!(field(&fields, "Pips"), "-54 pips");
    assert_eq!(field(&fields, "Profit"), "-$540.00");
    assert_eq!(field(&fields, "Result"), "LOSS");

    let trade = closed_trade("BTCUSDT", Side::Short, "60000", "58800", "2", CloseReason::ManualClose);
    let message = render::trade_closed_message(&trade, "USD").unwrap();
    assert!(message.components.is_empty());
    let embed = serde_json::to_value(&message.embeds[0]).unwrap();
    assert_eq!(embed["title"], "TRADE CLOSED · BTCUSDT SHORT");
    let fields = fields_of(&embed);
    assert_eq!(field(&fields, "Change"), "+1200 (+2%)");
    assert_eq!(field(&fields, "Profit"), "+$2400.00");
}

#[test]
fn open_trades_have_no_close_report() {
    let opened = Utc::now();
    let new =
        NewTrade::new(UserId(1), "EURUSD", Side::Long, price("1.1"), Lots::parse("1").unwrap(), None, None, opened)
            .unwrap();
    let trade = Trade::from_new(TradeId(3), new);
    let err = render::trade_closed_message(&trade, "USD").unwrap_err();
    assert!(err.to_string().contains("trade 3 is not closed"), "{err}");
}

#[test]
fn custom_ids_round_trip() {
    for id in [CustomId::Open(1), CustomId::Ignore(42), CustomId::Details(i64::MAX), CustomId::TradeModal(9)] {
        assert_eq!(parse_custom_id(&id.to_string()), Ok(id));
    }
    assert_eq!(parse_custom_id("open:42"), Ok(CustomId::Open(42)));
    assert_eq!(parse_custom_id("trade:42").unwrap().notification_id(), 42);
}

#[test]
fn foreign_custom_ids_are_refused_clearly() {
    assert_eq!(parse_custom_id(""), Err(CustomIdError::Empty));
    assert!(matches!(parse_custom_id("open"), Err(CustomIdError::NoSeparator(_))));
    assert!(matches!(parse_custom_id("close:1"), Err(CustomIdError::UnknownKind { .. })));
    assert!(matches!(parse_custom_id("OPEN:1"), Err(CustomIdError::UnknownKind { .. })));
    for bad in ["open:", "open:x", "open:-1", "open:+1", "open:0", "open: 1", "open:1:2", "open:99999999999999999999"] {
        assert!(matches!(parse_custom_id(bad), Err(CustomIdError::BadNotificationId { .. })), "{bad}");
    }
    let err = parse_custom_id("close:1").unwrap_err().to_string();
    assert!(err.contains("open:<id>") && err.contains("close:1"), "{err}");
    let long = format!("x:{}", "9".repeat(500));
    assert!(parse_custom_id(&long).unwrap_err().to_string().len() < 300);
}
