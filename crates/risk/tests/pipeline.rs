//! The pipeline through its public API: each gate at its boundaries, the order the gates run in, and the
//! sizing math checked against hand formulas (pip value × pips) rather than against the code under test.

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use domain::{Entry, Instrument, InstrumentRegistry, Price, RateBook, Side, Symbol};
use risk::{
    AccountSnapshot, FollowerRiskSettings, Gate, HoursDraft, ProviderRecord, RiskOutcome, RiskRequest,
    RiskSettingsDraft, SignalIntent, Sizing, SizingBasis, evaluate,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn settings(edit: impl FnOnce(&mut RiskSettingsDraft)) -> FollowerRiskSettings {
    let mut draft = RiskSettingsDraft::default();
    edit(&mut draft);
    FollowerRiskSettings::new_checked(draft).unwrap()
}

fn price(v: Decimal) -> Price {
    Price::new(v).unwrap()
}

fn instrument(symbol: &str) -> &'static Instrument {
    InstrumentRegistry::global().get(symbol).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn intent(symbol: &str, side: Side, entry: Decimal, sl: Option<Decimal>) -> SignalIntent {
    SignalIntent {
        symbol: Symbol::normalize(symbol),
        side,
        entry: Entry::Price { price: price(entry) },
        stop_loss: sl.map(price),
        take_profits: vec![],
    }
}

/// A Wednesday noon in UTC: inside any all-day window.
const WEDNESDAY: &str = "2026-01-14T12:00:00Z";

struct Case {
    settings: FollowerRiskSettings,
    account: AccountSnapshot,
    intent: SignalIntent,
    market_price: Option<Price>,
    provider: Option<ProviderRecord>,
    rates: RateBook,
    now: DateTime<Utc>,
}

impl Case {
    /// A clean EURUSD long with a 20-pip stop on a $10,000 account with default settings.
    fn new() -> Case {
        Case {
            settings: FollowerRiskSettings::default(),
            account: AccountSnapshot::usd(dec!(10000)),
            intent: intent("EURUSD", Side::Long, dec!(1.0854), Some(dec!(1.0834))),
            market_price: None,
            provider: None,
            rates: RateBook::default(),
            now: at(WEDNESDAY),
        }
    }

    fn run(&self) -> RiskOutcome {
        let instrument = instrument(self.intent.symbol.as_str());
        evaluate(&RiskRequest {
            settings: &self.settings,
            account: &self.account,
            intent: &self.intent,
            instrument,
            market_price: self.market_price,
            provider: self.provider.as_ref(),
            rates: &self.rates,
            now: self.now,
        })
    }

    fn refused(&self) -> (Gate, String) {
        let refusal = self.run().expect_err("expected a refusal");
        (refusal.gate, refusal.reason)
    }

    fn lots(&self) -> Decimal {
        self.run().expect("expected an approval").order().lots.value()
    }
}

/// Rounds down to the step, the textbook way: floor(x / step) × step.
fn floor_to(x: Decimal, step: Decimal) -> Decimal {
    (x / step).floor() * step
}

#[test]
fn tier_limit_allows_up_to_the_plan_and_no_more() {
    let mut case = Case::new();
    case.settings = settings(|d| d.signals_per_day = Some(10));
    case.account.signals_taken_today = 9;
    assert!(case.run().is_ok());
    case.account.signals_taken_today = 10;
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::TierLimit);
    assert_eq!(reason, "daily signal limit of your plan reached: 10 of 10 signals copied today");
    case.settings = settings(|d| d.signals_per_day = None);
    case.account.signals_taken_today = 10_000;
    assert!(case.run().is_ok(), "no tier limit means unlimited");
    case.settings = settings(|d| d.signals_per_day = Some(0));
    case.account.signals_taken_today = 0;
    assert_eq!(case.refused().0, Gate::TierLimit, "a plan without copying copies nothing");
}

#[test]
fn daily_loss_limit_is_a_share_of_the_days_starting_balance() {
    let mut case = Case::new();
    // Lost $512.40 today, from $10,000.00 this morning.
    case.account.balance = dec!(9487.60);
    case.account.realised_pnl_today = dec!(-512.40);
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::DailyLoss);
    assert_eq!(reason, "daily loss limit reached: \u{2212}$512.40 of a $500.00 limit (5% of $10,000.00)");

    // Exactly at the limit is reached; a cent short is not.
    case.account.balance = dec!(9500);
    case.account.realised_pnl_today = dec!(-500);
    assert_eq!(case.refused().0, Gate::DailyLoss);
    case.account.balance = dec!(9500.01);
    case.account.realised_pnl_today = dec!(-499.99);
    assert!(case.run().is_ok());

    // A winning day widens nothing but does not trip the gate either.
    case.account.balance = dec!(10800);
    case.account.realised_pnl_today = dec!(800);
    assert!(case.run().is_ok());

    // A custom 2% limit of $10,000 is $200.
    case.settings = settings(|d| d.daily_loss_percent = dec!(2));
    case.account.balance = dec!(9800);
    case.account.realised_pnl_today = dec!(-200);
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::DailyLoss);
    assert!(reason.contains("of a $200.00 limit (2% of $10,000.00)"), "{reason}");

    case.account = AccountSnapshot::usd(Decimal::ZERO);
    assert_eq!(case.refused().0, Gate::DailyLoss, "an empty account has nothing to risk");
}

#[test]
fn trading_hours_window_crossing_midnight_with_weekdays() {
    let mut case = Case::new();
    case.settings = settings(|d| {
        d.time_zone = "Europe/London".into();
        d.hours = Some(HoursDraft {
            start: hm(22, 0),
            end: hm(2, 0),
            weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
        });
    });
    // January: London is on GMT, so local time is UTC.
    let inside = ["2026-01-14T22:00:00Z", "2026-01-14T23:59:00Z", "2026-01-15T01:59:59Z", "2026-01-17T01:30:00Z"];
    for now in inside {
        case.now = at(now);
        assert!(case.run().is_ok(), "{now} is inside the window");
    }
    // 02:00 closes; 21:59 is not yet open; Saturday 22:30 starts no session; Monday 01:00 belongs to Sunday.
    let outside = ["2026-01-15T02:00:00Z", "2026-01-14T21:59:00Z", "2026-01-17T22:30:00Z", "2026-01-19T01:00:00Z"];
    for now in outside {
        case.now = at(now);
        assert_eq!(case.refused().0, Gate::TradingHours, "{now} is outside the window");
    }
    case.now = at("2026-01-17T22:30:00Z");
    assert_eq!(
        case.refused().1,
        "outside your trading hours: it is Sat 22:30 in Europe/London; you trade 22:00\u{2013}02:00, \
         sessions starting Mon, Tue, Wed, Thu, Fri"
    );
}

#[test]
fn trading_hours_follow_the_zone_across_a_dst_change() {
    let mut case = Case::new();
    case.settings = settings(|d| {
        d.time_zone = "America/New_York".into();
        d.hours = Some(HoursDraft {
            start: hm(9, 30),
            end: hm(16, 0),
            weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
        });
    });
    // Friday 6 March 2026 is on EST (UTC−5): the open is 14:30 UTC.
    case.now = at("2026-03-06T14:30:00Z");
    assert!(case.run().is_ok());
    case.now = at("2026-03-06T14:29:00Z");
    assert_eq!(case.refused().0, Gate::TradingHours);
    // Clocks go forward on Sunday 8 March; on Monday the open is 13:30 UTC (EDT, UTC−4).
    case.now = at("2026-03-09T13:30:00Z");
    assert!(case.run().is_ok(), "09:30 EDT");
    case.now = at("2026-03-09T13:29:00Z");
    assert_eq!(case.refused().0, Gate::TradingHours);
    case.now = at("2026-03-09T20:00:00Z");
    assert_eq!(case.refused().0, Gate::TradingHours, "16:00 EDT is the close");
    // The weekend in between is closed at any hour.
    case.now = at("2026-03-07T15:00:00Z");
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::TradingHours);
    assert!(reason.contains("it is Sat 10:00 in America/New_York"), "{reason}");

    // A window inside the skipped hour never opens on the DST day: 01:59 EST is followed by 03:00 EDT.
    case.settings = settings(|d| {
        d.time_zone = "America/New_York".into();
        d.hours = Some(HoursDraft { start: hm(2, 0), end: hm(3, 0), weekdays: vec![] });
    });
    for now in ["2026-03-08T06:59:00Z", "2026-03-08T07:00:00Z"] {
        case.now = at(now);
        assert_eq!(case.refused().0, Gate::TradingHours, "{now}");
    }
    case.now = at("2026-03-09T06:30:00Z");
    assert!(case.run().is_ok(), "02:30 EDT the next day");
}

#[test]
fn max_open_positions_is_a_ceiling() {
    let mut case = Case::new();
    case.account.open_positions = 2;
    assert!(case.run().is_ok());
    case.account.open_positions = 3;
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::MaxOpenPositions);
    assert_eq!(reason, "maximum open positions reached: 3 of 3 open");
    case.settings = settings(|d| d.max_open_positions = 5);
    assert!(case.run().is_ok());
}

#[test]
fn the_first_failing_gate_is_the_one_reported() {
    let mut case = Case::new();
    case.settings = settings(|d| {
        d.signals_per_day = Some(1);
        d.hours = Some(HoursDraft { start: hm(8, 0), end: hm(9, 0), weekdays: vec![] });
    });
    case.account = AccountSnapshot {
        currency: "USD".into(),
        balance: dec!(9000),
        realised_pnl_today: dec!(-1000),
        open_positions: 3,
        signals_taken_today: 1,
    };
    case.intent.stop_loss = None;
    // Fix each failure in turn: the next one in the order shows up.
    assert_eq!(case.refused().0, Gate::TierLimit);
    case.account.signals_taken_today = 0;
    assert_eq!(case.refused().0, Gate::DailyLoss);
    case.account.realised_pnl_today = Decimal::ZERO;
    assert_eq!(case.refused().0, Gate::TradingHours);
    case.now = at("2026-01-14T08:30:00Z");
    assert_eq!(case.refused().0, Gate::MaxOpenPositions);
    case.account.open_positions = 0;
    assert_eq!(case.refused().0, Gate::Sizing);
    case.intent.stop_loss = Some(price(dec!(1.0834)));
    assert!(case.run().is_ok());
    // A malformed signal is refused before any gate, whatever else fails.
    case.account.signals_taken_today = 1;
    case.intent.stop_loss = Some(price(dec!(1.0900)));
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Signal);
    assert!(reason.contains("stop loss must be below"), "{reason}");
}

#[test]
fn signal_checks() {
    let mut case = Case::new();
    case.intent = intent("XAUUSD", Side::Short, dec!(2000), Some(dec!(1990)));
    assert_eq!(case.refused().0, Gate::Signal, "a short's stop loss is above the entry");
    case.intent.stop_loss = Some(price(dec!(2010)));
    case.intent.take_profits = vec![price(dec!(1980)), price(dec!(2005))];
    assert_eq!(case.refused().0, Gate::Signal, "a short's take profits are below the entry");
    case.intent.take_profits = vec![price(dec!(1980))];
    assert!(case.run().is_ok());

    // A market entry needs the current price; with it the stop is measured from there.
    case.intent = intent("EURUSD", Side::Long, dec!(1), Some(dec!(1.0834)));
    case.intent.entry = Entry::Market;
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Signal);
    assert!(reason.contains("needs the current price"), "{reason}");
    case.market_price = Some(price(dec!(1.0844)));
    // 10 pips at $10 a pip per lot: $200 / $100 = 2 lots.
    assert_eq!(case.lots(), dec!(2));
    case.market_price = Some(price(dec!(1.0830)));
    assert_eq!(case.refused().0, Gate::Signal, "the market already went through the stop");

    // A zone is sized from the edge farthest from the stop: a long fills at worst at the top.
    case.intent.entry = Entry::Zone { low: price(dec!(1.0844)), high: price(dec!(1.0854)) };
    let approved = case.run().unwrap();
    assert_eq!(approved.order().reference_price, price(dec!(1.0854)));
    assert_eq!(approved.order().lots.value(), dec!(1), "20 pips from the top of the zone");
    case.intent.entry = Entry::Zone { low: price(dec!(1.0854)), high: price(dec!(1.0844)) };
    assert_eq!(case.refused().0, Gate::Signal);

    // The instrument must be the one the signal names.
    let case = Case::new();
    let refused = evaluate(&RiskRequest {
        settings: &case.settings,
        account: &case.account,
        intent: &case.intent,
        instrument: instrument("GBPUSD"),
        market_price: None,
        provider: None,
        rates: &case.rates,
        now: case.now,
    })
    .unwrap_err();
    assert_eq!(refused.gate, Gate::Signal);
}

#[test]
fn risk_percent_sizing_by_hand_eurusd() {
    let case = Case::new();
    // 2% of $10,000 = $200; a 20-pip stop at $10 a pip per standard lot (0.0001 × 100,000) costs $200 a lot.
    let (budget, pips, pip_value) = (dec!(10000) * dec!(0.02), dec!(20), dec!(10));
    let expected = floor_to(budget / (pips * pip_value), dec!(0.01));
    assert_eq!(expected, dec!(1));
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), expected);
    assert_eq!(approved.sizing().basis, SizingBasis::RiskPercent { percent: dec!(2) });
    assert_eq!(approved.sizing().risk_amount, Some(dec!(200)));

    // An awkward one: 1.5% of $7,321.55 over a 37-pip short stop.
    let mut case = Case::new();
    case.settings = settings(|d| d.sizing = Sizing::RiskPercent { percent: dec!(1.5) });
    case.account = AccountSnapshot::usd(dec!(7321.55));
    case.intent = intent("EURUSD", Side::Short, dec!(1.0854), Some(dec!(1.0891)));
    let expected = floor_to(dec!(7321.55) * dec!(0.015) / (dec!(37) * dec!(10)), dec!(0.01));
    assert_eq!(expected, dec!(0.29), "109.82 / 370 = 0.2968");
    assert_eq!(case.lots(), expected);
}

#[test]
fn risk_percent_sizing_by_hand_usdjpy() {
    let mut case = Case::new();
    case.intent = intent("USDJPY", Side::Long, dec!(150.00), Some(dec!(149.50)));
    // 50 pips; a pip on a standard lot is 0.01 × 100,000 = 1,000 JPY, worth 1,000 / 149.50 USD at the stop.
    let pip_value = dec!(1000) / dec!(149.50);
    let expected = floor_to(dec!(200) / (dec!(50) * pip_value), dec!(0.01));
    assert_eq!(expected, dec!(0.59), "200 / 334.45 = 0.598");
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), expected);
    let risk = approved.sizing().risk_amount.unwrap();
    assert!(risk <= dec!(200) && risk > dec!(197), "{risk}");
}

#[test]
fn risk_percent_sizing_by_hand_xauusd() {
    let mut case = Case::new();
    // Gold: a pip is 0.1 and a lot 100 oz, so a pip is $10 a lot. A 125-pip short stop costs $1,250 a lot.
    case.intent = intent("XAUUSD", Side::Short, dec!(2000.0), Some(dec!(2012.5)));
    let expected = floor_to(dec!(200) / (dec!(125) * dec!(0.1) * dec!(100)), dec!(0.01));
    assert_eq!(expected, dec!(0.16));
    assert_eq!(case.lots(), expected);
}

#[test]
fn risk_percent_sizing_by_hand_crypto() {
    let mut case = Case::new();
    // BTCUSDT trades in coins: risk per coin is the stop distance itself. 1.5% of $12,345.67 over $840.
    case.settings = settings(|d| d.sizing = Sizing::RiskPercent { percent: dec!(1.5) });
    case.account = AccountSnapshot::usd(dec!(12345.67));
    case.intent = intent("BTCUSDT", Side::Long, dec!(64250), Some(dec!(63410)));
    let expected = floor_to(dec!(12345.67) * dec!(0.015) / dec!(840), dec!(0.01));
    assert_eq!(expected, dec!(0.22), "185.19 / 840 = 0.2205");
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), expected);
    assert_eq!(approved.sizing().stop_distance, Some(dec!(840)));
    // The refusal sentence for crypto speaks in price units and percent, not pips.
    case.account = AccountSnapshot::usd(dec!(100));
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert!(reason.contains("a stop 840 away (1.31%)"), "{reason}");
    assert!(reason.contains("rounds down to zero"), "{reason}");
}

#[test]
fn sizes_round_down_to_the_step_and_stay_within_bounds() {
    let mut case = Case::new();
    // $200 over a 7-pip stop ($70 a lot) is 2.857 lots.
    case.intent = intent("EURUSD", Side::Long, dec!(1.0854), Some(dec!(1.0847)));
    assert_eq!(case.lots(), dec!(2.85));
    case.settings = settings(|d| {
        d.lot_step = dec!(0.1);
        d.min_lots = dec!(0.1);
    });
    assert_eq!(case.lots(), dec!(2.8), "never rounded up to 2.9");
    case.settings = settings(|d| d.max_lots = dec!(2));
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), dec!(2));
    assert!(approved.sizing().capped_at_max);

    // $20 over a 40-pip stop is 0.05 lots: under a 0.1 minimum it is refused, not raised.
    let mut case = Case::new();
    case.account = AccountSnapshot::usd(dec!(1000));
    case.intent = intent("EURUSD", Side::Long, dec!(1.0854), Some(dec!(1.0814)));
    assert_eq!(case.lots(), dec!(0.05));
    case.settings = settings(|d| {
        d.min_lots = dec!(0.1);
        d.lot_step = dec!(0.05);
    });
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert_eq!(
        reason,
        "the position is below your minimum: 2% of $1,000.00 ($20.00) over a 40-pip stop allows 0.05 lots, \
         rounded down to 0.05 against a minimum of 0.1"
    );
    // $2 over 40 pips is 0.005 lots: zero after rounding.
    case.account = AccountSnapshot::usd(dec!(100));
    case.settings = FollowerRiskSettings::default();
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert!(reason.starts_with("the position rounds down to zero"), "{reason}");
}

#[test]
fn stop_loss_is_needed_only_when_the_size_depends_on_it() {
    let mut case = Case::new();
    case.intent.stop_loss = None;
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert_eq!(
        reason,
        "the signal has no stop loss, and sizing by % of balance at risk needs one to know how much is at risk"
    );
    case.settings = settings(|d| d.sizing = Sizing::FixedLots { lots: dec!(0.3) });
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), dec!(0.3));
    assert_eq!(approved.sizing().risk_amount, None);
    // With a stop the fixed size's risk is reported: 20 pips × $10 × 0.3 lots.
    case.intent.stop_loss = Some(price(dec!(1.0834)));
    assert_eq!(case.run().unwrap().sizing().risk_amount, Some(dec!(60)));
}

#[test]
fn crosses_need_a_rate_to_value_the_stop() {
    let mut case = Case::new();
    case.intent = intent("EURGBP", Side::Long, dec!(0.8600), Some(dec!(0.8580)));
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert!(reason.contains("cannot be valued in USD"), "{reason}");
    case.rates.set("GBPUSD", dec!(1.25));
    // 20 pips × £10 × 1.25 = $250 a lot; $200 / $250 = 0.8.
    assert_eq!(case.lots(), floor_to(dec!(200) / (dec!(20) * dec!(10) * dec!(1.25)), dec!(0.01)));
    assert_eq!(case.lots(), dec!(0.8));
}

fn record(trades: u32, win_rate: Decimal, win_r: Decimal, loss_r: Decimal) -> ProviderRecord {
    ProviderRecord { trades, win_rate, average_win_r: win_r, average_loss_r: loss_r }
}

#[test]
fn kelly_sizing_capped_and_with_its_fallback() {
    let mut case = Case::new();
    case.settings = settings(|d| {
        d.sizing = Sizing::Kelly { fraction: dec!(0.25), max_risk_percent: dec!(3), min_trades: 20 };
    });
    // Kelly = W − (1 − W) / (G / L) = 0.45 − 0.55 / 1.5 = 1/12; a quarter of it is 2.083% of $10,000.
    case.provider = Some(record(40, dec!(0.45), dec!(1.5), dec!(1)));
    let percent = (dec!(0.45) - dec!(0.55) / dec!(1.5)) * dec!(0.25) * dec!(100);
    let expected = floor_to(dec!(10000) * percent / dec!(100) / dec!(200), dec!(0.01));
    assert_eq!(expected, dec!(1.04), "208.33 / 200");
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), expected);
    assert!(matches!(approved.sizing().basis, SizingBasis::Kelly { capped: false, .. }));

    // A stronger record wants 6.25% and gets the 3% cap: $300 / $200 = 1.5 lots.
    case.provider = Some(record(40, dec!(0.55), dec!(1.5), dec!(1)));
    let approved = case.run().unwrap();
    assert_eq!(approved.order().lots.value(), dec!(1.5));
    assert_eq!(approved.sizing().basis, SizingBasis::Kelly { full_kelly: dec!(0.25), percent: dec!(3), capped: true });

    // 19 trades are too few: sized at the % risk cap, and the outcome says so.
    case.provider = Some(record(19, dec!(0.9), dec!(3), dec!(1)));
    let approved = case.run().unwrap();
    assert_eq!(approved.sizing().basis, SizingBasis::KellyFallback { percent: dec!(3), trades: 19, needed: 20 });
    assert_eq!(approved.order().lots.value(), dec!(1.5));
    case.provider = None;
    assert_eq!(
        case.run().unwrap().sizing().basis,
        SizingBasis::KellyFallback { percent: dec!(3), trades: 0, needed: 20 }
    );
    // Exactly 20 trades is enough.
    case.provider = Some(record(20, dec!(0.45), dec!(1.5), dec!(1)));
    assert_eq!(case.lots(), dec!(1.04));

    // No edge: nothing is risked.
    case.provider = Some(record(50, dec!(0.3), dec!(1), dec!(1)));
    let (gate, reason) = case.refused();
    assert_eq!(gate, Gate::Sizing);
    assert!(reason.contains("shows no edge over 50 trades"), "{reason}");
    assert!(reason.contains("Kelly fraction of -40%"), "{reason}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// (symbol, entry in its quote, pip or price unit of the stop, whether a lot's loss is divided by the
    /// stop price to reach USD: USD-based pairs).
    const MARKETS: &[(&str, i64, u32, bool)] = &[
        ("EURUSD", 10854, 4, false),
        ("USDJPY", 15000, 2, true),
        ("XAUUSD", 20000, 1, false),
        ("BTCUSDT", 6425000, 2, false),
        ("USDCHF", 9012, 4, true),
    ];

    proptest! {
        #[test]
        fn approved_orders_never_risk_more_than_asked(
            market in 0..MARKETS.len(),
            stop_units in 1i64..2_000,
            long in any::<bool>(),
            balance_cents in 10_000i64..100_000_000,
            percent_hundredths in 1i64..1_000,
            step_index in 0usize..4,
            min_steps in 1i64..5,
            max_steps in 5i64..400,
        ) {
            let (symbol, entry_units, scale, usd_base) = MARKETS[market];
            let entry = Decimal::new(entry_units, scale);
            let distance = Decimal::new(stop_units, scale);
            prop_assume!(distance < entry);
            let side = if long { Side::Long } else { Side::Short };
            let sl = if long { entry - distance } else { entry + distance };
            let step = [dec!(0.01), dec!(0.05), dec!(0.1), dec!(1)][step_index];
            let (min, max) = (step * Decimal::from(min_steps), (step * Decimal::from(max_steps)).min(dec!(100)));
            prop_assume!(min <= max);
            let max = floor_to(max, step);
            let percent = Decimal::new(percent_hundredths, 2);
            let balance = Decimal::new(balance_cents, 2);

            let mut case = Case::new();
            case.settings = settings(|d| {
                d.sizing = Sizing::RiskPercent { percent };
                d.lot_step = step;
                d.min_lots = min;
                d.max_lots = max;
            });
            case.account = AccountSnapshot::usd(balance);
            case.intent = intent(symbol, side, entry, Some(sl));

            // The independent arithmetic: loss per lot at the stop, in USD.
            let contract = instrument(symbol).contract_size;
            let per_lot = if usd_base { distance * contract / sl } else { distance * contract };
            let budget = balance * percent / dec!(100);
            let ideal = floor_to(budget / per_lot, step).min(max);

            match case.run() {
                Ok(approved) => {
                    let lots = approved.order().lots.value();
                    prop_assert!((lots % step).is_zero(), "{lots} is not a multiple of {step}");
                    prop_assert!(lots >= min && lots <= max, "{lots} outside [{min}, {max}]");
                    let risk = lots * per_lot;
                    prop_assert!(risk <= budget + dec!(0.000001), "risk {risk} over budget {budget}");
                    prop_assert!(lots >= ideal - step, "{lots} is more than a step under {ideal}");
                }
                Err(refused) => {
                    prop_assert_eq!(refused.gate, Gate::Sizing);
                    prop_assert!(ideal < min, "refused ({}) although {ideal} lots fit in [{min}, {max}]", refused.reason);
                }
            }
        }
        #[test]
        fn kelly_never_risks_more_than_its_cap(
            trades in 0u32..200,
            win_percent in 0i64..=100,
            win_r_tenths in 1i64..50,
            loss_r_tenths in 1i64..30,
            fraction_hundredths in 1i64..=100,
            cap_tenths in 1i64..100,
            stop_pips in 5i64..500,
        ) {
            let cap = Decimal::new(cap_tenths, 1);
            let fraction = Decimal::new(fraction_hundredths, 2);
            let mut case = Case::new();
            case.settings = settings(|d| {
                d.sizing = Sizing::Kelly { fraction, max_risk_percent: cap, min_trades: 20 };
                d.max_lots = dec!(100);
            });
            case.account = AccountSnapshot::usd(dec!(250000));
            case.intent = intent("EURUSD", Side::Long, dec!(1.0854), Some(dec!(1.0854) - Decimal::new(stop_pips, 4)));
            let (w, g, l) = (Decimal::new(win_percent, 2), Decimal::new(win_r_tenths, 1), Decimal::new(loss_r_tenths, 1));
            case.provider = Some(record(trades, w, g, l));
            let kelly = w - (Decimal::ONE - w) * l / g;
            let budget = dec!(250000) * cap / dec!(100);
            match case.run() {
                Ok(approved) => {
                    let lots = approved.order().lots.value();
                    // $10 a pip per lot on EURUSD.
                    let risk = lots * Decimal::from(stop_pips) * dec!(10);
                    prop_assert!(risk <= budget, "risk {risk} over the {cap}% cap {budget}");
                    if trades < 20 {
                        let is_fallback = matches!(approved.sizing().basis, SizingBasis::KellyFallback { .. });
                        prop_assert!(is_fallback);
                    } else {
                        prop_assert!(kelly > Decimal::ZERO);
                        let wanted = (kelly * fraction * dec!(100)).min(cap);
                        prop_assert!(risk <= dec!(250000) * wanted / dec!(100) + dec!(0.01));
                    }
                }
                Err(refused) => {
                    prop_assert_eq!(refused.gate, Gate::Sizing);
                    prop_assert!(trades >= 20 && kelly <= Decimal::ZERO || refused.reason.contains("rounds down to zero"),
                        "{}", refused.reason);
                }
            }
        }
    }
}
