//! The rules of the labels one at a time, through the public `parse`: number forms, symbols, side words,
//! pip stops, kinds and update actions.

use domain::Side;
use parser::{EntryPrice, MessageKind, UpdateAction, parse};
use rust_decimal_macros::dec;

fn symbol(text: &str) -> Option<String> {
    parse(text).symbol.map(|s| s.as_str().to_string())
}

#[test]
fn thousands_separators_and_decimal_commas() {
    let m = parse("BTCUSDT LONG 42,800 SL 41,900 TP 44,000 10x");
    assert_eq!(m.entry, Some(EntryPrice::Price(dec!(42800))));
    assert_eq!(m.stop_loss, Some(dec!(41900)));
    let m = parse("USDJPY VENDA 151,85\nSL 152,30\nTP 151,20");
    assert_eq!(m.entry, Some(EntryPrice::Price(dec!(151.85))));
    assert_eq!(m.take_profits, vec![dec!(151.20)]);
    let m = parse("XAUUSD COMPRA 590,50 SL 585,00 TP 600,00");
    assert_eq!(m.entry, Some(EntryPrice::Price(dec!(590.50))));
    let m = parse("opusdt short @1.3827 sl:1.4253 tp:1.3420,1.3077 lev 50");
    assert_eq!(m.take_profits, vec![dec!(1.3420), dec!(1.3077)], "a comma between decimals separates");
}

#[test]
fn k_suffix_multiplies_by_a_thousand() {
    let m = parse("#BTCUSDT SHORT\nEntry: 42.5k - 43.1k\nTP: 41.8k\nSL: 43.9k");
    assert_eq!(m.entry, Some(EntryPrice::Zone { low: dec!(42500), high: dec!(43100) }));
    assert_eq!(m.stop_loss, Some(dec!(43900)));
    assert_eq!(m.take_profits, vec![dec!(41800)]);
}

#[test]
fn zones_are_sorted_whatever_the_order() {
    let zone = |text: &str| parse(text).entry;
    let want = Some(EntryPrice::Zone { low: dec!(67.07), high: dec!(67.14) });
    assert_eq!(zone("LTCUSDT LONG 67.14-67.07\nTarget 67.44\nStop 66.69"), want);
    assert_eq!(zone("LTCUSDT LONG 67.07-67.14\nTarget 67.44\nStop 66.69"), want);
    assert_eq!(
        zone("EURJPY BUY 164.30/35\nSL 163.80\nTP 165.00"),
        Some(EntryPrice::Zone { low: dec!(164.30), high: dec!(164.35) })
    );
    assert_eq!(
        zone("XAUUSD SELL 2347_2345\nSL 2352\nTP 2338"),
        Some(EntryPrice::Zone { low: dec!(2345), high: dec!(2347) })
    );
    assert_eq!(
        zone("#AVAXUSDT LONG\nEntry 1: 34.20\nEntry 2: 33.10\nEntry 3: 32.40\nTP: 35.5\nSL: 31.6"),
        Some(EntryPrice::Zone { low: dec!(32.40), high: dec!(34.20) }),
        "a DCA list gives its lowest and highest"
    );
    assert_eq!(zone("Long BTC/USDT at market price\nStop: 50582.7\nTargets: 52667.7"), None, "market, no price");
}

#[test]
fn symbols_are_normalised() {
    // Noise carries no symbol, so each form is given as an open.
    for form in ["BTC/USDT", "#BTCUSDT", "$BTC/USDT", "BTC-USDT", "BTCUSDT.P", "BTC/USDT:USDT", "BTCUSDT PERP"] {
        let text = format!("{form} LONG 42000 SL 41000 TP 43000");
        assert_eq!(symbol(&text).as_deref(), Some("BTCUSDT"), "{text}");
    }
    assert_eq!(symbol("long sol 145.2 sl 141 tp 150").as_deref(), Some("SOLUSDT"));
    assert_eq!(symbol("Pair: XRP LONG\nEntry: 0.51\nSL 0.49").as_deref(), Some("XRPUSDT"));
    assert_eq!(symbol("💎 BUY #APT/USD at #KRAKEN\nEntry: 8.9\nStop loss: 8.7").as_deref(), Some("APTUSD"));
    assert_eq!(symbol("1000PEPEUSDT LONG 0.0114 SL 0.011").as_deref(), Some("1000PEPEUSDT"));
    assert_eq!(symbol("Eur/Usd buy now 1.0832 sl 1.0790").as_deref(), Some("EURUSD"));
    assert_eq!(symbol("EUR USD BUY 1.0765 SL 1.0725").as_deref(), Some("EURUSD"));
    assert_eq!(symbol("Gbp cad sell 1.7420 SL 1.7490").as_deref(), Some("GBPCAD"));
    assert_eq!(symbol("GOLD BUY NOW 2318.40 SL 2312").as_deref(), Some("XAUUSD"));
    assert_eq!(symbol("XAU/USD sell 2318 SL 2325").as_deref(), Some("XAUUSD"));
    assert_eq!(symbol("SILVER sell 31.45 sl 31.80").as_deref(), Some("XAGUSD"));
    assert_eq!(symbol("US30 SELL 39,250 SL 39,420").as_deref(), Some("US30"));
    assert_eq!(symbol("USOIL BUY 78.35 SL 77.60").as_deref(), Some("USOIL"));
    assert_eq!(symbol("$TSLA long 242.10 stop 236.50").as_deref(), Some("TSLA"));
    assert_eq!(symbol("AAPL long 189.50 stop 186.90").as_deref(), Some("AAPL"));
}

#[test]
fn side_words() {
    let side = |text: &str| parse(text).side;
    assert_eq!(side("EURUSD BUY NOW 1.0850 SL 1.0800"), Some(Side::Long));
    assert_eq!(side("SELL USDJPY 149.44\nSL149.56"), Some(Side::Short));
    assert_eq!(side("#SOLUSDT ЛОНГ\nВход: 142.5\nСтоп: 138.9"), Some(Side::Long));
    assert_eq!(side("ШОРТ #ETHUSDT\nВход: 3520\nСтоп: 3580"), Some(Side::Short));
    assert_eq!(side("EURUSD COMPRA 1,0850\nStop 1,0810"), Some(Side::Long));
    assert_eq!(side("EURUSD VENDA 1.0890 SL 1.0930"), Some(Side::Short));
    assert_eq!(side("#AVAX/USDT\nEnter above 36.20\nStop: 34.9"), Some(Side::Long));
    assert_eq!(side("#WIF/USDT\nEnter below 1.5845\nStop: 1.6102"), Some(Side::Short));
    assert_eq!(side("📉 DOGE/USDT 💰 0.1623 🛑 0.1671 🎯 0.1580"), Some(Side::Short));
    assert_eq!(side("DOT/USDT\nEntry 6.42\nTP 6.20\nStop 6.61"), Some(Side::Short), "from the stop");
    assert_eq!(side("BNB/USDT\nBuy 558.99\nTP 572.28\nStop 537.89"), Some(Side::Long));
    assert_eq!(side("#ADA/USDT Take-Profit target 2 ✅\nProfit: 44.1% 📈"), None, "an update states no side");
}

#[test]
fn pip_stops_convert_from_the_entry() {
    let m = parse("USDJPY BUY 151.20\nSL 30 pips\nTP 151.80");
    assert_eq!(m.stop_loss, Some(dec!(150.90)), "JPY pip is 0.01");
    let m = parse("AUDUSD sell @ 0.6620, stop 40 pips, tp 0.6550");
    assert_eq!(m.stop_loss, Some(dec!(0.6660)), "pip is 0.0001");
    let m = parse("EUR USD BUY 1.0765\nSL 1.0725 (40 pips)\nTP 1.0845 (80 pips)");
    assert_eq!(m.stop_loss, Some(dec!(1.0725)), "a pips note after a price is ignored");
    assert_eq!(m.take_profits, vec![dec!(1.0845)]);
}

#[test]
fn leverage_forms() {
    let lev = |text: &str| parse(text).leverage;
    assert_eq!(lev("ETHUSDT short market SL 3520 TP 3380 Cross 20x"), Some(20));
    assert_eq!(lev("Pair: XRP LONG\nEntry: 0.51\nSL 0.49\nLev ×10"), Some(10));
    assert_eq!(lev("#SOLUSDT ЛОНГ\nВход: 142.5\nСтоп: 138.9\nПлечо: 20х"), Some(20));
    assert_eq!(lev("#LINKUSDT SHORT\nSELL : 11.311\nSTOP LOSS : 11.385\nLEV:  10X-20X (CROSS)"), Some(20));
    assert_eq!(lev("EURUSD BUY 1.0850 SL 1.0800 TP 1.0900"), None);
}

#[test]
fn open_ended_targets_are_left_out() {
    let m = parse("GOLD BUY NOW 2318.40\nSL 2312\nTP1 2322\nTP2 2326\nTP3 open");
    assert_eq!(m.take_profits, vec![dec!(2322), dec!(2326)]);
}

#[test]
fn kinds_and_actions() {
    let m = parse("Close 50% of the gold sell now, SL to entry");
    assert_eq!(m.kind, MessageKind::Update);
    assert_eq!(m.actions, vec![UpdateAction::ClosePartial(dec!(50)), UpdateAction::MoveStopToBreakeven]);
    let m = parse("EURUSD 🟢 +32 pips so far, move your stop to 1.0842 and relax");
    assert_eq!((m.kind, m.stop_loss, m.side), (MessageKind::Update, Some(dec!(1.0842)), None));
    assert_eq!(m.actions, vec![UpdateAction::MoveStop(dec!(1.0842))]);
    let m = parse("New TP for SOL long: 112.5");
    assert_eq!(m.actions, vec![UpdateAction::SetTakeProfits(vec![dec!(112.5)])]);
    let m = parse("ADAUSDT TP3 added: 0.4850");
    assert_eq!(m.actions, vec![UpdateAction::AddTakeProfit(dec!(0.4850))]);
    let m = parse("#ADA/USDT Take-Profit target 2 ✅");
    assert_eq!(m.actions, vec![UpdateAction::TakeProfitHit(Some(2))]);
    let m = parse("Cancel the GBPJPY sell limit, setup invalidated");
    assert_eq!((m.kind, m.side), (MessageKind::Close, Some(Side::Short)));
    assert_eq!(m.actions, vec![UpdateAction::Cancel]);
    let m = parse("Close #DOGE/USDT now, market turned");
    assert_eq!((m.kind, m.actions), (MessageKind::Close, vec![UpdateAction::CloseAll]));
    let m = parse("Close BTC now!");
    assert_eq!((m.kind, m.symbol.map(|s| s.as_str().to_string())), (MessageKind::Close, Some("BTCUSDT".into())));
    assert_eq!(parse("Don't forget to set your stop loss!").kind, MessageKind::Noise);
    let m = parse("#LINKUSDT #LONG\nBUY : 11.311$- 11.335$\nTARGET 1 : 11.5$\n❗️STOL LOSS : 11.1$");
    assert_eq!(m.stop_loss, Some(dec!(11.1)), "a typo in the stop's label");
    let noise = parse("1.0850 holding well, bulls in control for now");
    assert_eq!(noise, parser::ParsedMessage::noise());
}

#[test]
fn empty_and_odd_input() {
    for text in ["", " ", "\n\n", "🎯🎯🎯", "TP", "SL 0", "0x", "1,", ",1", "1.", "x", "@", "#", "k"] {
        let m = parse(text);
        assert_eq!(m.kind, MessageKind::Noise, "{text:?}");
    }
}

/// Label forms met in the third held-out round and the probes after it.
#[test]
fn label_variants() {
    let m = parse("EURUSD Buy Limit @ 1.0820\nS/L 1.0790\nT/P 1.0870");
    assert_eq!((m.stop_loss, m.take_profits), (Some(dec!(1.0790)), vec![dec!(1.0870)]), "S/L and T/P");
    let m = parse("LONG #TON/USDT\nEntry: 5.42\nTarget 1 - 5.55\nTarget 2 - 5.68\nStop Loss - 5.24");
    assert_eq!(m.take_profits, vec![dec!(5.55), dec!(5.68)], "a dash after the target's number");
    let m = parse("#ADA/USDT SHORT\nEntry 0.5350\nStop 0.5500\nTargets\n1- 0.52\n2- 0.51");
    assert_eq!(m.take_profits, vec![dec!(0.52), dec!(0.51)], "numbered lines with a dash");
    let m = parse("Symbol: BTCUSDT\nSide: SELL\nEntry price: 65820\nStop price: 66450\nTake profit 1: 65100");
    assert_eq!((m.entry, m.stop_loss), (Some(EntryPrice::Price(dec!(65820))), Some(dec!(66450))), "Stop price:");
    let m = parse("BUY GOLD @2355 TP1:2360 TP2:2365 SL:2349");
    assert_eq!(m.take_profits, vec![dec!(2360), dec!(2365)], "`1:2360` is not a clock time");
    assert_eq!(symbol("Bitcoin short 64,500 SL 65,200 TP 63,000").as_deref(), Some("BTCUSDT"));
}

#[test]
fn kinds_from_context() {
    let m = parse("US30 trailing stop now at 39,450");
    assert_eq!((m.kind, m.stop_loss), (MessageKind::Update, Some(dec!(39450))));
    assert_eq!(parse("Market is closed for the weekend, see you Monday 👋").kind, MessageKind::Noise);
    assert_eq!(parse("London session closed, quiet day").kind, MessageKind::Noise);
    assert_eq!(parse("Last week's GBPJPY short from 195.40 to 193.90 = +150 pips ✅").kind, MessageKind::Noise);
    assert_eq!(parse("Risk 3-4% per trade. BUY EURUSD 1.0850").kind, MessageKind::Open, "a range is no result");
    let m = parse("BTC: TP1 hit, SL now at entry");
    assert_eq!(m.kind, MessageKind::Update, "the hit is the target's, not the stop's");
    assert!(m.actions.contains(&UpdateAction::MoveStopToBreakeven));
    assert_eq!(parse("Get out of EURUSD now ❌").kind, MessageKind::Close);
    assert_eq!(parse("TP1 hit ✅").kind, MessageKind::Update, "a reported event needs no instrument");
}
