//! The gates, in order, and the position sizing at the end of them.

use crate::money::{money, percent, plain};
use crate::{
    AccountSnapshot, Approved, FollowerRiskSettings, Gate, OrderIntent, ProviderRecord, Refused, SignalIntent, Sizing,
    SizingBasis, SizingReport,
};
use chrono::{DateTime, Datelike, Utc, Weekday};
use domain::{Entry, Instrument, Lots, Price, RateBook, Side, trade::check_levels};
use rust_decimal::{Decimal, RoundingStrategy};

/// Everything one decision reads. The caller loads it; the pipeline only computes.
#[derive(Debug, Clone, Copy)]
pub struct RiskRequest<'a> {
    pub settings: &'a FollowerRiskSettings,
    pub account: &'a AccountSnapshot,
    pub intent: &'a SignalIntent,
    /// The instrument the intent's symbol names (from `domain::InstrumentRegistry`).
    pub instrument: &'a Instrument,
    /// The current price: needed for a market entry, ignored otherwise.
    pub market_price: Option<Price>,
    /// The provider's record, for Kelly sizing; None sizes a Kelly follower at the % risk cap.
    pub provider: Option<&'a ProviderRecord>,
    /// Converts a loss in the instrument's quote currency into the account currency.
    pub rates: &'a RateBook,
    pub now: DateTime<Utc>,
}

/// Approved, or refused by the first gate that fails.
pub type RiskOutcome = Result<Approved<OrderIntent>, Refused>;

/// Runs the signal check, then the gates in order: tier limit, daily loss, trading hours, open positions,
/// sizing. The first gate that fails is the one reported.
pub fn evaluate(request: &RiskRequest<'_>) -> RiskOutcome {
    let reference = check_signal(request)?;
    tier_limit(request.settings, request.account)?;
    daily_loss(request.settings, request.account)?;
    trading_hours(request.settings, request.now)?;
    open_positions(request.settings, request.account)?;
    let (lots, sizing) = size(request, reference)?;
    let intent = request.intent;
    let order = OrderIntent {
        symbol: intent.symbol.clone(),
        side: intent.side,
        entry: intent.entry,
        reference_price: reference,
        lots,
        stop_loss: intent.stop_loss,
        take_profits: intent.take_profits.clone(),
    };
    Ok(Approved::new(order, sizing))
}

/// Checks the signal is one a broker could take and returns the entry price to size it at.
fn check_signal(request: &RiskRequest<'_>) -> Result<Price, Refused> {
    let intent = request.intent;
    let refuse = |reason: String| Refused::new(Gate::Signal, reason);
    if intent.symbol != request.instrument.symbol {
        return Err(refuse(format!(
            "the signal is for {} but was checked against {}",
            intent.symbol, request.instrument.symbol
        )));
    }
    // (where the stop loss is checked from, where the take profits are checked from, what the size is
    // computed from): for a zone, the edges a fill would be worst at.
    let (sl_ref, tp_ref, sizing_ref) = match intent.entry {
        Entry::Market => {
            let price = request.market_price.ok_or_else(|| {
                refuse(format!("a market order on {} needs the current price, and none is known", intent.symbol))
            })?;
            (price, price, price)
        }
        Entry::Price { price } => (price, price, price),
        Entry::Zone { low, high } => {
            if low >= high {
                return Err(refuse(format!("the entry zone's low {low} must be below its high {high}")));
            }
            match intent.side {
                Side::Long => (low, high, high),
                Side::Short => (high, low, low),
            }
        }
    };
    check_levels(intent.side, sl_ref, intent.stop_loss, None).map_err(|e| refuse(e.to_string()))?;
    for tp in &intent.take_profits {
        check_levels(intent.side, tp_ref, None, Some(*tp)).map_err(|e| refuse(e.to_string()))?;
    }
    Ok(sizing_ref)
}

fn tier_limit(settings: &FollowerRiskSettings, account: &AccountSnapshot) -> Result<(), Refused> {
    match settings.signals_per_day() {
        Some(limit) if account.signals_taken_today >= limit => Err(Refused::new(
            Gate::TierLimit,
            format!(
                "daily signal limit of your plan reached: {} of {limit} signals copied today",
                account.signals_taken_today
            ),
        )),
        _ => Ok(()),
    }
}

fn daily_loss(settings: &FollowerRiskSettings, account: &AccountSnapshot) -> Result<(), Refused> {
    let ccy = account.currency.as_str();
    let day_start = account.day_start_balance();
    if day_start <= Decimal::ZERO {
        return Err(Refused::new(
            Gate::DailyLoss,
            format!("the day started with a balance of {}, so there is nothing to risk", money(day_start, ccy)),
        ));
    }
    let pct = settings.daily_loss_percent();
    // Compared at the cent, as the sentence shows it.
    let limit = checked(day_start.checked_mul(pct).and_then(|v| v.checked_div(Decimal::ONE_HUNDRED)), Gate::DailyLoss)?
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let lost = -account.realised_pnl_today;
    if lost >= limit {
        return Err(Refused::new(
            Gate::DailyLoss,
            format!(
                "daily loss limit reached: {} of a {} limit ({} of {})",
                money(account.realised_pnl_today, ccy),
                money(limit, ccy),
                percent(pct),
                money(day_start, ccy)
            ),
        ));
    }
    Ok(())
}

fn short_day(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

fn trading_hours(settings: &FollowerRiskSettings, now: DateTime<Utc>) -> Result<(), Refused> {
    let Some(hours) = settings.hours() else { return Ok(()) };
    let tz = settings.time_zone();
    let local = now.with_timezone(&tz);
    if hours.contains(local.weekday(), local.time()) {
        return Ok(());
    }
    let days = if hours.weekdays().is_empty() {
        "every day".to_string()
    } else {
        let names: Vec<&str> = hours.weekdays().iter().map(|d| short_day(*d)).collect();
        format!("sessions starting {}", names.join(", "))
    };
    Err(Refused::new(
        Gate::TradingHours,
        format!(
            "outside your trading hours: it is {} {} in {}; you trade {}\u{2013}{}, {days}",
            short_day(local.weekday()),
            local.format("%H:%M"),
            tz.name(),
            hours.start().format("%H:%M"),
            hours.end().format("%H:%M"),
        ),
    ))
}

fn open_positions(settings: &FollowerRiskSettings, account: &AccountSnapshot) -> Result<(), Refused> {
    let max = settings.max_open_positions();
    if account.open_positions >= max {
        return Err(Refused::new(
            Gate::MaxOpenPositions,
            format!("maximum open positions reached: {} of {max} open", account.open_positions),
        ));
    }
    Ok(())
}

fn checked(value: Option<Decimal>, gate: Gate) -> Result<Decimal, Refused> {
    value.ok_or_else(|| Refused::new(gate, "the amounts are too large to compute with"))
}

/// The stop-loss distance in words: pips where the instrument has them, else price units and percent.
fn describe_stop(instrument: &Instrument, distance: Decimal, reference: Price) -> String {
    match instrument.to_pips(distance) {
        Some(pips) => {
            format!("a {}-pip stop", plain(pips.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)))
        }
        None => {
            let pct = (distance / reference.value() * Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            format!("a stop {} away ({})", plain(distance), percent(pct))
        }
    }
}

/// The share of the balance a Kelly follower risks on this provider, or a refusal when the record shows
/// no edge.
fn kelly_percent(
    fraction: Decimal,
    max_risk_percent: Decimal,
    min_trades: u32,
    provider: Option<&ProviderRecord>,
) -> Result<(SizingBasis, Decimal), Refused> {
    let trades = provider.map_or(0, |p| p.trades);
    let Some(record) = provider.filter(|p| p.trades >= min_trades) else {
        let basis = SizingBasis::KellyFallback { percent: max_risk_percent, trades, needed: min_trades };
        return Ok((basis, max_risk_percent));
    };
    let Some(full_kelly) = record.kelly() else {
        return Err(Refused::new(
            Gate::Sizing,
            format!(
                "the provider's record cannot be used for Kelly sizing (win rate {}, average win {}R, average loss {}R)",
                percent(record.win_rate * Decimal::ONE_HUNDRED),
                plain(record.average_win_r),
                plain(record.average_loss_r)
            ),
        ));
    };
    if full_kelly <= Decimal::ZERO {
        return Err(Refused::new(
            Gate::Sizing,
            format!(
                "the provider shows no edge over {trades} trades: {} wins averaging {}R against losses of {}R \
                 give a Kelly fraction of {}, so nothing is risked",
                percent((record.win_rate * Decimal::ONE_HUNDRED).round_dp(1)),
                plain(record.average_win_r.round_dp(2)),
                plain(record.average_loss_r.round_dp(2)),
                percent((full_kelly * Decimal::ONE_HUNDRED).round_dp(1))
            ),
        ));
    }
    let scaled =
        checked(full_kelly.checked_mul(fraction).and_then(|v| v.checked_mul(Decimal::ONE_HUNDRED)), Gate::Sizing)?;
    let capped = scaled > max_risk_percent;
    let applied = if capped { max_risk_percent } else { scaled.round_dp(6) };
    Ok((SizingBasis::Kelly { full_kelly, percent: applied, capped }, applied))
}

fn size(request: &RiskRequest<'_>, reference: Price) -> Result<(Lots, SizingReport), Refused> {
    let settings = request.settings;
    let account = request.account;
    let instrument = request.instrument;
    let ccy = account.currency.as_str();
    let refuse = |reason: String| Refused::new(Gate::Sizing, reason);
    let stop = request.intent.stop_loss;
    let distance = stop.map(|sl| (reference.value() - sl.value()).abs());
    // What one lot loses at the stop loss, in the account currency: converted at the stop-loss price, where
    // the loss would be realised.
    let per_lot = |sl: Price, distance: Decimal| -> Result<Decimal, Refused> {
        let quote = checked(distance.checked_mul(instrument.contract_size), Gate::Sizing)?;
        request
            .rates
            .to_account(quote, instrument, sl, ccy)
            .map_err(|e| refuse(format!("the stop loss cannot be valued in {ccy}: {e}")))
    };

    let (basis, percent_value) = match settings.sizing() {
        Sizing::FixedLots { lots } => {
            let lots = Lots::new_checked(lots).map_err(|e| refuse(e.to_string()))?;
            // What a fixed size puts at risk is reported when it can be known; it does not block the order.
            let risk_amount = match (stop, distance) {
                (Some(sl), Some(d)) => per_lot(sl, d).ok().and_then(|p| p.checked_mul(lots.value())),
                _ => None,
            };
            let report = SizingReport {
                basis: SizingBasis::FixedLots,
                risk_budget: None,
                risk_amount,
                stop_distance: distance,
                unrounded_lots: None,
                capped_at_max: false,
            };
            return Ok((lots, report));
        }
        Sizing::RiskPercent { percent } => (SizingBasis::RiskPercent { percent }, percent),
        Sizing::Kelly { fraction, max_risk_percent, min_trades } => {
            kelly_percent(fraction, max_risk_percent, min_trades, request.provider)?
        }
    };

    let (Some(sl), Some(distance)) = (stop, distance) else {
        let rule = match basis {
            SizingBasis::RiskPercent { .. } => "sizing by % of balance at risk",
            _ => "Kelly sizing",
        };
        return Err(refuse(format!("the signal has no stop loss, and {rule} needs one to know how much is at risk")));
    };
    if account.balance <= Decimal::ZERO {
        return Err(refuse(format!("the balance is {}, so there is nothing to risk", money(account.balance, ccy))));
    }
    let budget = checked(
        account.balance.checked_mul(percent_value).and_then(|v| v.checked_div(Decimal::ONE_HUNDRED)),
        Gate::Sizing,
    )?;
    let per_lot = per_lot(sl, distance)?;
    if per_lot <= Decimal::ZERO {
        return Err(refuse("the stop loss puts nothing at risk, so the size cannot follow from it".into()));
    }
    let raw = checked(budget.checked_div(per_lot), Gate::Sizing)?;
    let step = settings.lot_step();
    let mut lots = checked(raw.checked_div(step), Gate::Sizing)?.floor() * step;
    let capped_at_max = lots > settings.max_lots();
    if capped_at_max {
        lots = settings.max_lots();
    }
    // Division rounds at the 28th digit; step down rather than risk a hair more than the budget.
    while lots > Decimal::ZERO && checked(lots.checked_mul(per_lot), Gate::Sizing)? > budget {
        lots -= step;
    }
    let why = || {
        format!(
            "{} of {} ({}) over {} allows {} lots",
            percent(percent_value),
            money(account.balance, ccy),
            money(budget, ccy),
            describe_stop(instrument, distance, reference),
            plain(raw.round_dp_with_strategy(4, RoundingStrategy::ToZero)),
        )
    };
    if lots <= Decimal::ZERO {
        return Err(refuse(format!(
            "the position rounds down to zero: {}, less than one step of {}",
            why(),
            plain(step)
        )));
    }
    if lots < settings.min_lots() {
        return Err(refuse(format!(
            "the position is below your minimum: {}, rounded down to {} against a minimum of {}",
            why(),
            plain(lots),
            plain(settings.min_lots())
        )));
    }
    let lots = Lots::new_checked(lots).map_err(|e| refuse(e.to_string()))?;
    let risk_amount = checked(lots.value().checked_mul(per_lot), Gate::Sizing)?;
    Ok((
        lots,
        SizingReport {
            basis,
            risk_budget: Some(budget),
            risk_amount: Some(risk_amount),
            stop_distance: Some(distance),
            unrounded_lots: Some(raw.round_dp(8)),
            capped_at_max,
        },
    ))
}
