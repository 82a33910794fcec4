//! Trades: one user's position, validated before it is stored, and closed or cancelled exactly once.

use crate::{
    InstrumentRegistry, Lots, NotificationId, Price, PriceError, Side, SignalId, Symbol, TradeId, UnknownInstrument,
    UserId, pnl::Outcome,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(TradeStatus { Open => "open", Closed => "closed", Cancelled => "cancelled" });
string_enum!(CloseReason { TpHit => "tp_hit", SlHit => "sl_hit", ManualClose => "manual_close", Timeout => "timeout" });
string_enum!(TradeResult { Win => "win", Loss => "loss", Breakeven => "breakeven" });
string_enum!(
    /// The kinds of entry in a trade's history.
    TradeUpdateKind {
        Opened => "opened",
        PriceSnapshot => "price_snapshot",
        StopLossMoved => "stop_loss_moved",
        TakeProfitMoved => "take_profit_moved",
        PartialClose => "partial_close",
        Closed => "closed",
        Cancelled => "cancelled",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeError {
    #[error(transparent)]
    UnknownInstrument(#[from] UnknownInstrument),
    #[error(transparent)]
    Amount(#[from] PriceError),
    #[error("a {side} stop loss must be {} its entry {entry}, got {stop_loss}", if *side == Side::Long { "below" } else { "above" })]
    StopLossWrongSide { side: Side, entry: Price, stop_loss: Price },
    #[error("a {side} take profit must be {} its entry {entry}, got {take_profit}", if *side == Side::Long { "above" } else { "below" })]
    TakeProfitWrongSide { side: Side, entry: Price, take_profit: Price },
    #[error("{symbol} is quoted to {places} decimal places; {price} has more")]
    TooPrecise { symbol: Symbol, price: Price, places: u32 },
    #[error("trade {id} is {status}, not open")]
    NotOpen { id: TradeId, status: TradeStatus },
}

/// A trade that passed every check and may be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTrade {
    pub user_id: UserId,
    pub symbol: Symbol,
    pub side: Side,
    pub entry: Price,
    pub lots: Lots,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub notes: Option<String>,
    pub signal_id: Option<SignalId>,
    pub notification_id: Option<NotificationId>,
    pub opened_at: DateTime<Utc>,
}

/// Raw values as a person or a message gives them, before any check.
#[derive(Debug, Clone, Default)]
pub struct TradeRequest<'a> {
    pub symbol: &'a str,
    pub side: &'a str,
    pub entry: &'a str,
    pub lots: &'a str,
    pub stop_loss: Option<&'a str>,
    pub take_profit: Option<&'a str>,
}

/// Checks that a stop loss and take profit sit on the right sides of `entry` for `side`.
pub fn check_levels(
    side: Side,
    entry: Price,
    stop_loss: Option<Price>,
    take_profit: Option<Price>,
) -> Result<(), TradeError> {
    if let Some(sl) = stop_loss {
        let ok = match side {
            Side::Long => sl < entry,
            Side::Short => sl > entry,
        };
        if !ok {
            return Err(TradeError::StopLossWrongSide { side, entry, stop_loss: sl });
        }
    }
    if let Some(tp) = take_profit {
        let ok = match side {
            Side::Long => tp > entry,
            Side::Short => tp < entry,
        };
        if !ok {
            return Err(TradeError::TakeProfitWrongSide { side, entry, take_profit: tp });
        }
    }
    Ok(())
}

impl NewTrade {
    /// Builds a trade from typed values, checking the instrument, the precision and the SL/TP sides.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user_id: UserId,
        symbol: &str,
        side: Side,
        entry: Price,
        lots: Lots,
        stop_loss: Option<Price>,
        take_profit: Option<Price>,
        opened_at: DateTime<Utc>,
    ) -> Result<NewTrade, TradeError> {
        let instrument = InstrumentRegistry::global().get(symbol)?;
        for price in [Some(entry), stop_loss, take_profit].into_iter().flatten() {
            instrument.check_precision(price)?;
        }
        check_levels(side, entry, stop_loss, take_profit)?;
        Ok(NewTrade {
            user_id,
            symbol: instrument.symbol.clone(),
            side,
            entry,
            lots,
            stop_loss,
            take_profit,
            notes: None,
            signal_id: None,
            notification_id: None,
            opened_at,
        })
    }

    /// Parses every field from text (a form, a modal, a command line) and then checks it as `new` does.
    pub fn parse(
        user_id: UserId,
        request: &TradeRequest<'_>,
        opened_at: DateTime<Utc>,
    ) -> Result<NewTrade, TradeError> {
        let optional = |v: Option<&str>| -> Result<Option<Price>, TradeError> {
            match v.map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => Ok(Some(Price::parse(s)?)),
                None => Ok(None),
            }
        };
        NewTrade::new(
            user_id,
            request.symbol,
            Side::parse(request.side)?,
            Price::parse(request.entry)?,
            Lots::parse(request.lots)?,
            optional(request.stop_loss)?,
            optional(request.take_profit)?,
            opened_at,
        )
    }
}

/// A stored trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub id: TradeId,
    pub user_id: UserId,
    pub symbol: Symbol,
    pub side: Side,
    pub entry: Price,
    pub lots: Lots,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub status: TradeStatus,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub exit_price: Option<Price>,
    pub close_reason: Option<CloseReason>,
    pub result: Option<TradeResult>,
    pub pips: Option<Decimal>,
    pub profit: Option<Decimal>,
    pub notes: Option<String>,
    pub signal_id: Option<SignalId>,
    pub notification_id: Option<NotificationId>,
}

/// What closing a trade records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub exit_price: Price,
    pub reason: CloseReason,
    pub at: DateTime<Utc>,
    pub result: TradeResult,
    pub pips: Option<Decimal>,
    /// None when the account-currency value could not be computed; see `pnl::Outcome::profit`.
    pub profit: Option<Decimal>,
}

impl Closing {
    pub fn new(exit_price: Price, reason: CloseReason, at: DateTime<Utc>, outcome: &Outcome) -> Closing {
        Closing { exit_price, reason, at, result: outcome.result, pips: outcome.pips, profit: outcome.profit }
    }
}

impl Trade {
    pub fn from_new(id: TradeId, new: NewTrade) -> Trade {
        Trade {
            id,
            user_id: new.user_id,
            symbol: new.symbol,
            side: new.side,
            entry: new.entry,
            lots: new.lots,
            stop_loss: new.stop_loss,
            take_profit: new.take_profit,
            status: TradeStatus::Open,
            opened_at: new.opened_at,
            closed_at: None,
            exit_price: None,
            close_reason: None,
            result: None,
            pips: None,
            profit: None,
            notes: new.notes,
            signal_id: new.signal_id,
            notification_id: new.notification_id,
        }
    }

    /// open → closed, once. A second close is an error and changes nothing.
    pub fn close(&mut self, closing: &Closing) -> Result<(), TradeError> {
        if self.status != TradeStatus::Open {
            return Err(TradeError::NotOpen { id: self.id, status: self.status });
        }
        self.status = TradeStatus::Closed;
        self.closed_at = Some(closing.at);
        self.exit_price = Some(closing.exit_price);
        self.close_reason = Some(closing.reason);
        self.result = Some(closing.result);
        self.pips = closing.pips;
        self.profit = closing.profit;
        Ok(())
    }

    /// open → cancelled, once.
    pub fn cancel(&mut self, at: DateTime<Utc>) -> Result<(), TradeError> {
        if self.status != TradeStatus::Open {
            return Err(TradeError::NotOpen { id: self.id, status: self.status });
        }
        self.status = TradeStatus::Cancelled;
        self.closed_at = Some(at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pnl::{RateBook, outcome};

    fn req<'a>(side: &'a str, entry: &'a str, sl: &'a str, tp: &'a str) -> TradeRequest<'a> {
        TradeRequest { symbol: "EURUSD", side, entry, lots: "0.5", stop_loss: Some(sl), take_profit: Some(tp) }
    }

    #[test]
    fn rejects_levels_on_the_wrong_side() {
        let now = Utc::now();
        assert!(NewTrade::parse(UserId(1), &req("long", "1.0854", "1.0800", "1.0962"), now).is_ok());
        let err = NewTrade::parse(UserId(1), &req("long", "1.0854", "1.0900", "1.0962"), now).unwrap_err();
        assert!(matches!(err, TradeError::StopLossWrongSide { .. }));
        assert!(err.to_string().contains("below"), "{err}");
        let err = NewTrade::parse(UserId(1), &req("sell", "1.0854", "1.0900", "1.0962"), now).unwrap_err();
        assert!(matches!(err, TradeError::TakeProfitWrongSide { .. }));
        let err = NewTrade::parse(UserId(1), &req("long", "1.0854", "1.0854", "1.0962"), now).unwrap_err();
        assert!(matches!(err, TradeError::StopLossWrongSide { .. }));
    }

    #[test]
    fn rejects_bad_amounts_and_names() {
        let now = Utc::now();
        let mut r = req("long", "1.0854", "1.0800", "1.0962");
        r.lots = "150";
        assert!(matches!(NewTrade::parse(UserId(1), &r, now), Err(TradeError::Amount(PriceError::LotsOutOfRange(_)))));
        r.lots = "1";
        r.symbol = "EURUSX";
        let err = NewTrade::parse(UserId(1), &r, now).unwrap_err();
        assert!(err.to_string().contains("EURUSD"), "{err}");
        r.symbol = "EURUSD";
        r.entry = "1.085401";
        assert!(matches!(NewTrade::parse(UserId(1), &r, now), Err(TradeError::TooPrecise { .. })));
    }

    #[test]
    fn closes_exactly_once() {
        let now = Utc::now();
        let new = NewTrade::parse(UserId(1), &req("long", "1.0854", "1.0800", "1.0962"), now).unwrap();
        let mut trade = Trade::from_new(TradeId(7), new);
        let eurusd = InstrumentRegistry::global().get("EURUSD").unwrap();
        let exit = Price::parse("1.0962").unwrap();
        let o = outcome(eurusd, trade.side, trade.entry, exit, trade.lots, &RateBook::default(), "USD");
        let closing = Closing::new(exit, CloseReason::TpHit, now, &o);
        trade.close(&closing).unwrap();
        assert_eq!(trade.status, TradeStatus::Closed);
        assert_eq!(trade.profit, Some(Decimal::from(540)));
        assert!(matches!(trade.close(&closing), Err(TradeError::NotOpen { .. })));
        assert!(trade.cancel(now).is_err());
    }
}
