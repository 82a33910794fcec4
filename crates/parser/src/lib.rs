//! The provider-message parser: turns the text a signal provider posts in Discord or Telegram (Cornix-style
//! VIP posts, hand-written forex calls, emoji-only lines, Russian and Portuguese, TP-hit and SL-move updates)
//! into a [`ParsedMessage`]: what kind of message it is, the instrument, side, entry, stop, targets,
//! leverage, and for updates the actions to apply to the open trade.
//!
//! The labelling rules it follows are those of the project's corpus (`tests/data/README.md`). It is pure
//! and allocation-light: a hand-written tokenizer, no regular expressions, no I/O.

mod classify;
mod fields;
mod lex;
mod symbol;

use domain::{Side, Symbol};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

pub use classify::parse;

/// What a message is, in the corpus' four kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// A new trade instruction.
    Open,
    /// Manages an existing trade: TP hit, entry filled, stop moved, partial close, new targets.
    Update,
    /// The position or pending order is gone: closed, stopped out, all targets done, cancelled.
    Close,
    /// Everything else: chatter, news, recaps, adverts, analysis.
    Noise,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Open => "open",
            MessageKind::Update => "update",
            MessageKind::Close => "close",
            MessageKind::Noise => "noise",
        }
    }
}

/// The entry a message gives: one price, or a zone (`[low, high]`, whatever order the text used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPrice {
    Price(Decimal),
    Zone { low: Decimal, high: Decimal },
}

impl EntryPrice {
    /// The zone's far end from the stop's side: what a pip distance is measured from.
    fn reference(self, side: Side) -> Decimal {
        match (self, side) {
            (EntryPrice::Price(p), _) => p,
            (EntryPrice::Zone { low, .. }, Side::Long) => low,
            (EntryPrice::Zone { high, .. }, Side::Short) => high,
        }
    }

    fn mid(self) -> Decimal {
        match self {
            EntryPrice::Price(p) => p,
            EntryPrice::Zone { low, high } => low.checked_add(high).map_or(low, |s| s / Decimal::TWO),
        }
    }
}

/// What an update asks for, in the order the message says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAction {
    MoveStopToBreakeven,
    MoveStop(Decimal),
    /// Close this percentage of the position (`close half` is 50).
    ClosePartial(Decimal),
    CloseAll,
    SetTakeProfits(Vec<Decimal>),
    AddTakeProfit(Decimal),
    /// A pending entry changed.
    SetEntry(EntryPrice),
    /// A target was reached (its number when the message gives one).
    TakeProfitHit(Option<u8>),
    EntryFilled,
    Cancel,
}

/// One parsed message. Fields a kind does not carry are `None`/empty (noise carries none at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    pub kind: MessageKind,
    pub symbol: Option<Symbol>,
    pub side: Option<Side>,
    /// `None` for a market entry with no price.
    pub entry: Option<EntryPrice>,
    pub stop_loss: Option<Decimal>,
    /// In message order; open-ended targets (`TP4 open`) are left out.
    pub take_profits: Vec<Decimal>,
    pub leverage: Option<u32>,
    /// For updates and closes: what to do to the trade.
    pub actions: Vec<UpdateAction>,
}

impl ParsedMessage {
    pub fn noise() -> ParsedMessage {
        ParsedMessage {
            kind: MessageKind::Noise,
            symbol: None,
            side: None,
            entry: None,
            stop_loss: None,
            take_profits: Vec::new(),
            leverage: None,
            actions: Vec::new(),
        }
    }
}

/// A price as a JSON number in its shortest form (`1.085`, not `"1.0850"`), as the corpus writes them.
struct Number(Decimal);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use rust_decimal::prelude::ToPrimitive;
        let d = self.0.normalize();
        if d.scale() == 0
            && let Some(i) = d.to_i64()
        {
            return s.serialize_i64(i);
        }
        // f64's shortest round-trip form prints the decimal as written for prices of up to ~15 digits.
        s.serialize_f64(d.to_f64().unwrap_or(0.0))
    }
}

struct Prices<'a>(&'a [Decimal]);

impl Serialize for Prices<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&Number(*p))?;
        }
        seq.end()
    }
}

impl Serialize for EntryPrice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            EntryPrice::Price(p) => Number(p).serialize(s),
            EntryPrice::Zone { low, high } => Prices(&[low, high]).serialize(s),
        }
    }
}

/// The object `signalpost parse` prints: `{"kind", "symbol", "side", "entry", "stop_loss", "take_profits",
/// "leverage"}` (DESIGN.md). The actions stay in the Rust value; the corpus does not label them.
impl Serialize for ParsedMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("symbol", &self.symbol.as_ref().map(Symbol::as_str))?;
        map.serialize_entry("side", &self.side)?;
        map.serialize_entry("entry", &self.entry)?;
        map.serialize_entry("stop_loss", &self.stop_loss.map(Number))?;
        map.serialize_entry("take_profits", &Prices(&self.take_profits))?;
        map.serialize_entry("leverage", &self.leverage)?;
        map.end()
    }
}
