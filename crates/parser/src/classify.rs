//! Deciding what a message is (open, update, close, noise) from its cue words, and assembling the result
//! with the rules of LABELS.md: side from the words, else from the stop against the entry; pip stops;
//! updates carry only what they set.

use crate::fields::{self, EntryNum, Fields, Mode, is_entry_word, is_sl_word, is_tp_word};
use crate::lex::{self, Kind, Lexed, Num, Token};
use crate::symbol;
use crate::{EntryPrice, MessageKind, ParsedMessage, UpdateAction};
use domain::{Side, Symbol};
use rust_decimal::Decimal;

/// Parses one message. Never panics, whatever the text.
pub fn parse(text: &str) -> ParsedMessage {
    let lexed = lex::lex(text);
    let found = symbol::find(text);
    let cues = Cues::scan(&lexed);
    let open = fields::extract(&lexed, Mode::Open, found.as_ref().map(|f| f.start));
    let crypto = cues.crypto || open.lev.is_some();
    let symbol = found.as_ref().map(|f| Symbol::normalize(&symbol::resolve(f, crypto)));
    let sides = Sides::scan(&lexed);
    let entry = entry_of(&open.entries, open.sl.is_none() && open.tps.is_empty());
    let (entry, mut sl, tps) = match entry {
        Shape::Triple(e, s, t) => (Some(EntryPrice::Price(e)), Some(s), vec![t]),
        Shape::Entry(e) => (e, open.sl, open.tps.clone()),
    };
    let side = sides.strong.or(sides.arrow).or_else(|| geometry(entry, sl, &tps)).or(sides.label).or(sides.circle);

    let full_open = side.is_some() && sl.is_some() && (entry.is_some() || open.market);
    let kind = if full_open {
        MessageKind::Open
    } else if cues.noise {
        MessageKind::Noise
    } else if cues.close || cues.cancel {
        MessageKind::Close
    } else if cues.is_update()
        && (symbol.is_some() || open.sl.is_some() || !open.tps.is_empty() || cues.tp_hit.is_some() || cues.filled)
    {
        // Without an instrument or a price, "set your stop loss!" is advice, not an update; a reported
        // event ("TP1 hit ✅", "filled") is about the trade the post replies to.
        MessageKind::Update
    } else if looks_like_open(&symbol, side, &sides, entry, sl, &tps, &open, &cues) {
        MessageKind::Open
    } else {
        MessageKind::Noise
    };

    match kind {
        MessageKind::Noise => ParsedMessage::noise(),
        MessageKind::Open => {
            if sl.is_none()
                && let (Some(pips), Some(side), Some(entry)) = (open.sl_pips, side, entry)
            {
                sl = pip_stop(symbol.as_ref(), side, entry, pips);
            }
            ParsedMessage {
                kind,
                symbol,
                side,
                entry,
                stop_loss: sl,
                take_profits: tps,
                leverage: open.lev,
                actions: Vec::new(),
            }
        }
        MessageKind::Close => ParsedMessage {
            kind,
            symbol,
            side: sides.any_word,
            entry: None,
            stop_loss: None,
            take_profits: Vec::new(),
            leverage: None,
            actions: vec![if cues.cancel && !cues.close { UpdateAction::Cancel } else { UpdateAction::CloseAll }],
        },
        MessageKind::Update => update(&lexed, &cues, symbol, sides.any_word, found.map(|f| f.start)),
    }
}

/// The partial-open test for messages without a stop: an instrument, a direction or price, and targets
/// or a stop; or a stated side with an entry price. Hedged talk ("could", "watching") with no stop is analysis.
#[allow(clippy::too_many_arguments)]
fn looks_like_open(
    symbol: &Option<Symbol>,
    side: Option<Side>,
    sides: &Sides,
    entry: Option<EntryPrice>,
    sl: Option<Decimal>,
    tps: &[Decimal],
    open: &Fields,
    cues: &Cues,
) -> bool {
    if symbol.is_none() || cues.hedge && sl.is_none() {
        return false;
    }
    let has_levels = sl.is_some() || !tps.is_empty();
    let has_direction = side.is_some() || entry.is_some() || open.market;
    // A side and a price with no levels but a signed outcome (`short from 195.40 to 193.90 = +150 pips`)
    // reports a past trade.
    has_levels && has_direction || (sides.strong.is_some() || sides.label.is_some()) && entry.is_some() && !cues.result
}

fn update(
    lexed: &Lexed,
    cues: &Cues,
    symbol: Option<Symbol>,
    side: Option<Side>,
    symbol_at: Option<usize>,
) -> ParsedMessage {
    let f = fields::extract(lexed, Mode::Update, symbol_at);
    let mut actions = Vec::new();
    let entry = match entry_of(&f.entries, false) {
        Shape::Entry(e) if cues.entry_change && !cues.filled => e,
        _ => None,
    };
    if cues.filled {
        actions.push(UpdateAction::EntryFilled);
    }
    if cues.tp_hit.is_some() {
        actions.push(UpdateAction::TakeProfitHit(cues.tp_hit.flatten()));
    }
    if let Some(p) = cues.partial {
        actions.push(UpdateAction::ClosePartial(p));
    }
    if cues.breakeven {
        actions.push(UpdateAction::MoveStopToBreakeven);
    }
    let stop_loss = if cues.stop_hit { None } else { f.sl };
    if let Some(sl) = stop_loss {
        actions.push(UpdateAction::MoveStop(sl));
    }
    let take_profits = if cues.tp_set || cues.tp_add { f.tps } else { Vec::new() };
    if !take_profits.is_empty() {
        if cues.tp_add && !cues.tp_set {
            actions.extend(take_profits.iter().map(|p| UpdateAction::AddTakeProfit(*p)));
        } else {
            actions.push(UpdateAction::SetTakeProfits(take_profits.clone()));
        }
    }
    if let Some(e) = entry {
        actions.push(UpdateAction::SetEntry(e));
    }
    ParsedMessage { kind: MessageKind::Update, symbol, side, entry, stop_loss, take_profits, leverage: None, actions }
}

enum Shape {
    Entry(Option<EntryPrice>),
    /// `SHORT NEARUSDT 5.4884/5.5613/5.4234`: entry, stop and target in one slash-separated run.
    Triple(Decimal, Decimal, Decimal),
}

/// The entry from the numbers in entry position: one price, or the lowest and highest of a zone or list,
/// with `164.30/35` read as `164.30`–`164.35`.
fn entry_of(entries: &[EntryNum], may_be_triple: bool) -> Shape {
    if may_be_triple && entries.len() == 3 && entries[1].sep == Some('/') && entries[2].sep == Some('/') {
        return Shape::Triple(entries[0].num.value, entries[1].num.value, entries[2].num.value);
    }
    let mut values = entries.iter().enumerate().map(|(i, e)| match i.checked_sub(1).and_then(|p| entries.get(p)) {
        Some(prev) if matches!(e.sep, Some('/' | '-' | '–' | '_')) => {
            abbreviated(prev.num, e.num).unwrap_or(e.num.value)
        }
        _ => e.num.value,
    });
    let Some(first) = values.next() else { return Shape::Entry(None) };
    let (mut low, mut high) = (first, first);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    Shape::Entry(Some(if low == high { EntryPrice::Price(low) } else { EntryPrice::Zone { low, high } }))
}

/// `164.30/35` → 164.35: a short integer after a decimal replaces its last digits.
fn abbreviated(prev: Num, this: Num) -> Option<Decimal> {
    let digits = u32::from(this.int_digits);
    if !this.integer || prev.integer || digits < 2 || digits > u32::from(prev.frac_digits) {
        return None;
    }
    let unit = Decimal::new(1, u32::from(prev.frac_digits)).checked_mul(Decimal::from(10i64.checked_pow(digits)?))?;
    let base = prev.value.checked_div(unit)?.trunc().checked_mul(unit)?;
    let tail = this.value.checked_mul(Decimal::new(1, u32::from(prev.frac_digits)))?;
    let value = base.checked_add(tail)?;
    // Only a second end close to the first: `2.50-75` is more likely two prices than 2.50-2.75.
    let close = (value - prev.value).abs().checked_mul(Decimal::from(50))? <= prev.value;
    close.then_some(value)
}

/// Cornix's rule: with no side word, a stop below the entry is a long.
fn geometry(entry: Option<EntryPrice>, sl: Option<Decimal>, tps: &[Decimal]) -> Option<Side> {
    let by = |reference: Decimal, other: Decimal| match reference.cmp(&other) {
        std::cmp::Ordering::Greater => Some(Side::Long),
        std::cmp::Ordering::Less => Some(Side::Short),
        std::cmp::Ordering::Equal => None,
    };
    match (entry, sl, tps.first()) {
        (Some(e), Some(s), _) => by(e.mid(), s),
        (_, Some(s), Some(t)) => by(*t, s),
        (Some(e), None, Some(t)) => by(*t, e.mid()),
        _ => None,
    }
}

/// A stop given in pips, from the entry: pip = 0.0001, 0.01 for JPY pairs.
fn pip_stop(symbol: Option<&Symbol>, side: Side, entry: EntryPrice, pips: Decimal) -> Option<Decimal> {
    let pip = if symbol.is_some_and(|s| s.as_str().contains("JPY")) { Decimal::new(1, 2) } else { Decimal::new(1, 4) };
    let distance = pips.checked_mul(pip)?;
    let reference = entry.reference(side);
    match side {
        Side::Long => reference.checked_sub(distance),
        Side::Short => reference.checked_add(distance),
    }
}

/// The side words of a message, by how much they are to be trusted.
#[derive(Debug, Default)]
struct Sides {
    /// LONG/SHORT, BUY NOW, SELL #PAIR, Bullish, Enter above, ЛОНГ, ...
    strong: Option<Side>,
    /// 📈 📉 ⬆️ ⬇️ 🔻
    arrow: Option<Side>,
    /// `Buy 558.99`, `Buy:`: Cornix reads this as the entry label, and the direction from the stop.
    label: Option<Side>,
    /// 🟢 🔴
    circle: Option<Side>,
    /// The first side word of any strength: what an update or close states.
    any_word: Option<Side>,
}

impl Sides {
    fn scan(lexed: &Lexed) -> Sides {
        let toks = &lexed.tokens;
        let mut s = Sides::default();
        let mut prev_word: Option<&str> = None;
        for (i, t) in toks.iter().enumerate() {
            match t.kind {
                Kind::Punct(c) => {
                    let arrow = match c {
                        '📈' | '⬆' | '🔼' | '🔺' => Some(Side::Long),
                        '📉' | '⬇' | '🔽' | '🔻' => Some(Side::Short),
                        _ => None,
                    };
                    s.arrow = s.arrow.or(arrow);
                    let circle = match c {
                        '🟢' | '🟩' => Some(Side::Long),
                        '🔴' | '🟥' => Some(Side::Short),
                        _ => None,
                    };
                    s.circle = s.circle.or(circle);
                }
                Kind::Word { .. } => {
                    let w = lexed.word(t).unwrap_or("");
                    let side = match w {
                        "long" | "лонг" | "bullish" | "buy" | "compra" | "покупка" | "comprar" => {
                            Some(Side::Long)
                        }
                        "short" | "шорт" | "bearish" | "sell" | "venda" | "продажа" | "vender" => {
                            Some(Side::Short)
                        }
                        "above" if prev_word.is_some_and(is_entry_word) => Some(Side::Long),
                        "below" if prev_word.is_some_and(is_entry_word) => Some(Side::Short),
                        _ => None,
                    };
                    prev_word = Some(w);
                    let Some(side) = side else { continue };
                    if term_follows(lexed, i) {
                        continue;
                    }
                    s.any_word = s.any_word.or(Some(side));
                    let buy_sell =
                        matches!(w, "buy" | "sell" | "compra" | "venda" | "comprar" | "vender" | "покупка" | "продажа");
                    let as_label = buy_sell
                        && matches!(next_kind(toks, i), Some(Kind::Num(_) | Kind::Punct(':' | '-' | '@')) | None);
                    if as_label {
                        s.label = s.label.or(Some(side));
                    } else {
                        s.strong = s.strong.or(Some(side));
                    }
                }
                _ => {}
            }
        }
        s
    }
}

fn next_kind(toks: &[Token], i: usize) -> Option<Kind> {
    toks.get(i + 1).map(|t| t.kind)
}

/// `SHORT/MID TERM`, `long-term`: a holding period, not a side.
fn term_follows(lexed: &Lexed, i: usize) -> bool {
    lexed.tokens.iter().skip(i + 1).take(3).any(|t| lexed.word(t).is_some_and(|w| matches!(w, "term" | "termo")))
}

/// The cue words that make a message an update, a close or noise.
#[derive(Debug, Default)]
struct Cues {
    close: bool,
    cancel: bool,
    stop_hit: bool,
    /// `Some(n)` when a target was reached, with its number when given.
    tp_hit: Option<Option<u8>>,
    partial: Option<Decimal>,
    sl_move: bool,
    breakeven: bool,
    tp_set: bool,
    tp_add: bool,
    filled: bool,
    entry_change: bool,
    /// Recaps, results, adverts.
    noise: bool,
    /// Analysis talk: "could", "watching", "support".
    hedge: bool,
    /// Exchange names, futures, perpetuals: bare coins get their USDT quote.
    crypto: bool,
    /// A signed pip or percentage figure (`+150 pips`, `-35%`): an outcome, not a plan.
    result: bool,
}

impl Cues {
    fn is_update(&self) -> bool {
        self.tp_hit.is_some()
            || self.partial.is_some()
            || self.sl_move
            || self.breakeven
            || self.tp_set
            || self.tp_add
            || self.filled
            || self.entry_change
    }

    fn scan(lexed: &Lexed) -> Cues {
        // Words and the few marks that matter, with plain punctuation dropped, so "TP1 hit" and
        // "TP 1 - hit" read alike.
        #[derive(Clone, Copy)]
        enum It<'a> {
            W(&'a str),
            N(Num),
            Check,
            Cross,
        }
        let items: Vec<It<'_>> = lexed
            .tokens
            .iter()
            .filter_map(|t| match t.kind {
                Kind::Word { .. } => lexed.word(t).map(It::W),
                Kind::Num(n) => Some(It::N(n)),
                Kind::Punct('✅' | '✔' | '☑') => Some(It::Check),
                Kind::Punct('❌' | '✖') => Some(It::Cross),
                _ => None,
            })
            .collect();
        let word = |i: usize| match items.get(i) {
            Some(It::W(w)) => Some(*w),
            _ => None,
        };
        let words_near = |i: usize, back: usize, ahead: usize, f: &dyn Fn(&str) -> bool| {
            (i.saturating_sub(back)..=i + ahead).filter(|&j| j != i).any(|j| word(j).is_some_and(f))
        };
        let mut c = Cues::default();
        for (i, it) in items.iter().enumerate() {
            let It::W(w) = *it else { continue };
            match w {
                "binance" | "bybit" | "futures" | "perp" | "perpetual" | "usdt" | "kucoin" | "okx" | "bitget"
                | "mexc" | "cornix" | "crypto" | "altcoin" | "kraken" | "spot" | "leverage" | "lev" | "cross"
                | "isolated" | "плечо" | "фьючерсы" => c.crypto = true,
                "results"
                | "recap"
                | "summary"
                | "weekly"
                | "monthly"
                | "report"
                | "performance"
                | "winrate"
                | "wins"
                | "losses"
                | "stats"
                | "statistics"
                | "join"
                | "subscribe"
                | "discount"
                | "promo"
                | "giveaway"
                | "referral"
                | "resultados"
                | "результаты"
                | "итоги" => c.noise = true,
                "could" | "might" | "may" | "if" | "looks" | "watching" | "watch" | "analysis" | "idea" | "levels"
                | "support" | "resistance" | "waiting" | "wait" | "expect" | "expecting" | "possible" | "potential"
                | "maybe" | "perhaps" | "think" | "key" => c.hedge = true,
                _ => {}
            }
            // Closing, fully or in part.
            if matches!(
                w,
                "close"
                    | "closed"
                    | "closing"
                    | "закрыть"
                    | "закрыта"
                    | "закрыт"
                    | "закрываем"
                    | "закрыли"
                    | "fechar"
                    | "fechado"
                    | "fechada"
                    | "fechamos"
                    | "encerrado"
                    | "encerrar"
                    | "exit"
                    | "exited"
                    | "book"
                    | "booking"
                    | "booked"
                    | "secure"
                    | "take"
            ) {
                // `close 50%`, `book 50% profits`; not `closed at +18% profit`.
                let partial = (i + 1..=i + 3).find_map(|j| match items.get(j) {
                    Some(It::N(n))
                        if j == i + 1 && n.percent && n.value < Decimal::ONE_HUNDRED && n.value > Decimal::ZERO =>
                    {
                        Some(n.value)
                    }
                    Some(It::W("half" | "половину" | "metade" | "halve")) => Some(Decimal::from(50)),
                    Some(It::W("partial" | "partially" | "part" | "partials" | "some" | "parcial" | "частично")) => {
                        Some(Decimal::from(50))
                    }
                    _ => None,
                });
                let full_word = !matches!(w, "book" | "booking" | "booked" | "secure" | "take");
                // `close above 1.09`, `close to TP`: a candle's close or nearness, not an instruction.
                let not_a_close = word(i + 1).is_some_and(|n| matches!(n, "to" | "above" | "below" | "under" | "over"))
                    || word(i + 2).is_some_and(|n| matches!(n, "candle" | "candles"))
                    // `Market is closed for the weekend`, `London session closing`: trading hours.
                    || words_near(i, 3, 0, &|n| matches!(n, "market" | "markets" | "session" | "exchange" | "рынок"));
                if let Some(p) = partial {
                    c.partial = c.partial.or(Some(p));
                } else if full_word && !not_a_close {
                    c.close = true;
                }
            }
            if w == "stopped" && word(i + 1) == Some("out") {
                c.close = true;
                c.stop_hit = true;
            }
            if w == "out" && matches!(i.checked_sub(1).and_then(word), Some("re" | "we" | "m" | "all" | "get")) {
                c.close = true;
            }
            if is_sl_word(w)
                && (i + 1..=i + 2).any(|j| {
                    matches!(
                        word(j),
                        Some("hit" | "hunted" | "triggered" | "reached" | "taken" | "выбило" | "atingido")
                    )
                })
            {
                c.close = true;
                c.stop_hit = true;
            }
            // `hit stop`; not `TP1 hit, SL to entry`, where the hit is the target's.
            if matches!(w, "hit" | "hits")
                && (i + 1..=i + 2).any(|j| word(j).is_some_and(|n| is_sl_word(n) || n == "sl"))
                && !(i.saturating_sub(2)..i).any(|j| word(j).is_some_and(is_tp_word))
            {
                c.close = true;
                c.stop_hit = true;
            }
            if w == "all" && words_near(i, 0, 3, &|n| is_tp_word(n) || n == "take" || n == "tps") {
                c.close = true;
            }
            if matches!(
                w,
                "cancel"
                    | "cancelled"
                    | "canceled"
                    | "cancelling"
                    | "canceling"
                    | "отмена"
                    | "отменяем"
                    | "отменить"
                    | "cancelado"
                    | "cancelar"
                    | "invalidated"
                    | "delete"
                    | "deleted"
            ) {
                c.cancel = true;
            }
            // A target reached.
            if is_tp_word(w) || w == "take" {
                let hit = (i + 1..=i + 4).any(|j| match items.get(j) {
                    Some(It::W(n)) => matches!(
                        *n,
                        "hit"
                            | "hits"
                            | "reached"
                            | "achieved"
                            | "done"
                            | "smashed"
                            | "taken"
                            | "touched"
                            | "secured"
                            | "взят"
                            | "взята"
                            | "достигнута"
                            | "достигнут"
                            | "atingido"
                            | "atingida"
                            | "batido"
                    ),
                    Some(It::Check) => true,
                    _ => false,
                });
                if hit {
                    let number = (i + 1..=i + 2).find_map(|j| match items.get(j) {
                        Some(It::N(n)) if n.integer && n.value <= Decimal::from(20) => {
                            u8::try_from(n.value.mantissa()).ok()
                        }
                        _ => None,
                    });
                    c.tp_hit = Some(c.tp_hit.flatten().or(number));
                }
                if words_near(i, 3, 3, &|n| {
                    matches!(
                        n,
                        "new"
                            | "change"
                            | "changed"
                            | "update"
                            | "updated"
                            | "adjust"
                            | "adjusted"
                            | "set"
                            | "novo"
                            | "novos"
                            | "nova"
                            | "novas"
                            | "новый"
                            | "новые"
                            | "новая"
                            | "extend"
                            | "extended"
                    )
                }) {
                    c.tp_set = true;
                }
                if words_near(i, 2, 3, &|n| {
                    matches!(
                        n,
                        "add" | "added" | "adding" | "extra" | "additional" | "another" | "добавляем" | "adicionado"
                    )
                }) {
                    c.tp_add = true;
                }
            }
            if matches!(w, "hit" | "reached") && (i + 1..=i + 2).any(|j| word(j).is_some_and(is_tp_word)) {
                c.tp_hit = Some(c.tp_hit.flatten());
            }
            // Stop management.
            if is_sl_word(w) {
                let moved = words_near(i, 3, 3, &|n| {
                    matches!(
                        n,
                        "move"
                            | "moved"
                            | "moving"
                            | "shift"
                            | "raise"
                            | "lower"
                            | "adjust"
                            | "adjusted"
                            | "set"
                            | "new"
                            | "update"
                            | "updated"
                            | "trailing"
                            | "trail"
                            | "trailed"
                            | "перенос"
                            | "переносим"
                            | "переставить"
                            | "mover"
                            | "mova"
                            | "movido"
                    )
                });
                if moved || word(i + 1) == Some("to") {
                    c.sl_move = true;
                }
                let at_entry = (i + 1..=i + 4).any(|j| {
                    matches!(word(j), Some("entry" | "be" | "breakeven" | "безубыток" | "бу" | "entrada" | "zero"))
                });
                if at_entry && words_near(i, 0, 4, &|n| matches!(n, "to" | "at" | "в" | "на" | "no" | "para")) {
                    c.breakeven = true;
                }
            }
            if matches!(w, "breakeven" | "безубыток" | "breakeven.") || w == "break" && word(i + 1) == Some("even")
            {
                c.breakeven = true;
            }
            if matches!(
                w,
                "filled"
                    | "triggered"
                    | "activated"
                    | "entered"
                    | "исполнен"
                    | "исполнена"
                    | "executado"
                    | "executada"
                    | "ativada"
            ) {
                c.filled = true;
            }
            if is_entry_word(w)
                && words_near(i, 3, 2, &|n| {
                    matches!(
                        n,
                        "change" | "changed" | "new" | "move" | "moved" | "update" | "updated" | "adjust" | "adjusted"
                    )
                })
            {
                c.entry_change = true;
            }
        }
        // Not the second end of a range (`3-4%`): no number just before the sign.
        let toks = &lexed.tokens;
        c.result = (0..toks.len()).any(|i| {
            matches!(toks[i].kind, Kind::Punct('+' | '-' | '−'))
                && !i.checked_sub(1).is_some_and(|p| matches!(toks[p].kind, Kind::Num(_)))
                && toks.get(i + 1).is_some_and(|t| t.glued && matches!(t.kind, Kind::Num(n) if n.pips || n.percent))
        });
        // A stop hit without other words is the trade's end.
        if c.stop_hit {
            c.close = true;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn abbreviated_zone_end() {
        let n = |text: &str| match lex::lex(text).tokens[0].kind {
            Kind::Num(n) => n,
            _ => panic!("not a number"),
        };
        assert_eq!(abbreviated(n("164.30"), n("35")), Some(dec!(164.35)));
        assert_eq!(abbreviated(n("1.0850"), n("60")), Some(dec!(1.0860)));
        assert_eq!(abbreviated(n("3380"), n("3300")), None, "an integer list is not abbreviated");
        assert_eq!(abbreviated(n("67.14"), n("67.07")), None);
    }

    #[test]
    fn pips_convert_from_entry() {
        let jpy = Symbol::normalize("USDJPY");
        let eur = Symbol::normalize("EURUSD");
        assert_eq!(pip_stop(Some(&jpy), Side::Long, EntryPrice::Price(dec!(151.20)), dec!(30)), Some(dec!(150.90)));
        assert_eq!(pip_stop(Some(&eur), Side::Short, EntryPrice::Price(dec!(1.0620)), dec!(40)), Some(dec!(1.0660)));
    }
}
