//! Reading the prices out of a message: a small state machine over the tokens where labels (`Entry`, `SL`,
//! `TP1`, `🎯`, `Leverage`, `Вход`, `Alvo`, ...) say which field the following numbers belong to.

use crate::lex::{Kind, Lexed, Num, Token};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    None,
    Entry,
    Sl,
    Tp,
    Lev,
    /// Numbers here are something else: volume, risk, profit so far, support levels.
    Ignore,
}

/// Whether side words and `@`/`now` introduce an entry (a new signal) or are just words (an update, where
/// "New TP for SOL long: 112.5" must give the TP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Open,
    Update,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryNum {
    pub num: Num,
    /// The separator written between this number and the previous entry number, if any.
    pub sep: Option<char>,
}

#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub entries: Vec<EntryNum>,
    pub sl: Option<Decimal>,
    /// A stop given only as a distance: `SL 30 pips`.
    pub sl_pips: Option<Decimal>,
    pub tps: Vec<Decimal>,
    pub lev: Option<u32>,
    /// A market entry: `at market`, `CMP`.
    pub market: bool,
}

pub(crate) fn is_sl_word(w: &str) -> bool {
    matches!(w, "sl" | "stop" | "stoploss" | "stops" | "стоп" | "сл" | "стоплосс" | "invalidation")
}

pub(crate) fn is_tp_word(w: &str) -> bool {
    matches!(
        w,
        "tp" | "tps"
            | "target"
            | "targets"
            | "takeprofit"
            | "tgt"
            | "tgts"
            | "цель"
            | "цели"
            | "тейк"
            | "тейки"
            | "тп"
            | "alvo"
            | "alvos"
            | "objetivo"
            | "objetivos"
    )
}

pub(crate) fn is_entry_word(w: &str) -> bool {
    matches!(w, "entry" | "entries" | "entrada" | "entradas" | "вход" | "входа" | "enter")
}

pub(crate) fn is_side_word(w: &str) -> bool {
    matches!(
        w,
        "long"
            | "short"
            | "buy"
            | "sell"
            | "лонг"
            | "шорт"
            | "compra"
            | "venda"
            | "покупка"
            | "продажа"
            | "comprar"
            | "vender"
    )
}

fn word_label(w: &str, prev: Option<&str>, mode: Mode) -> Option<Field> {
    let prev_is = |f: fn(&str) -> bool| prev.is_some_and(f);
    if is_entry_word(w) || w == "zone" && !prev_is(is_sl_word) {
        return Some(Field::Entry);
    }
    if matches!(w, "targets" | "target") && (prev_is(is_entry_word) || prev_is(is_sl_word)) {
        return None;
    }
    // `Stop price:`, `Take profit price:`: the label before it says which price.
    if w == "price" && prev_is(|p| is_sl_word(p) || is_tp_word(p) || matches!(p, "loss" | "profit")) {
        return None;
    }
    if w == "stop" && prev_is(|p| matches!(p, "buy" | "sell")) {
        return Some(Field::Entry);
    }
    // A bare `loss` too: providers' typos (`STOL LOSS`) still label the stop.
    if is_sl_word(w) || w == "loss" {
        return Some(Field::Sl);
    }
    if is_tp_word(w) || w == "take" || w == "profit" && prev == Some("take") {
        return Some(Field::Tp);
    }
    if matches!(w, "leverage" | "lev" | "cross" | "isolated" | "плечо" | "alavancagem") {
        return Some(Field::Lev);
    }
    if matches!(
        w,
        "profit"
            | "profits"
            | "volume"
            | "ask"
            | "bid"
            | "risk"
            | "use"
            | "invest"
            | "period"
            | "size"
            | "balance"
            | "fund"
            | "funds"
            | "portfolio"
            | "support"
            | "resistance"
            | "rr"
            | "ratio"
            | "published"
            | "exchange"
            | "exchanges"
            | "capital"
            | "amount"
            | "time"
            | "date"
            | "level"
            | "levels"
            | "gain"
            | "roi"
            | "pnl"
            | "duration"
            | "lot"
            | "lots"
            | "deposit"
            | "margin"
            | "term"
            | "риск"
            | "объем"
            | "risco"
    ) {
        return Some(Field::Ignore);
    }
    if mode == Mode::Open
        && (is_side_word(w) || matches!(w, "at" | "now" | "cmp" | "limit" | "market" | "price" | "ep" | "agora"))
    {
        return Some(Field::Entry);
    }
    None
}

fn emoji_label(c: char, mode: Mode) -> Option<Field> {
    match c {
        '💰' | '🛒' | '💵' | '@' if mode == Mode::Open => Some(Field::Entry),
        '🛑' | '⛔' | '🚫' => Some(Field::Sl),
        '🎯' => Some(Field::Tp),
        _ => None,
    }
}

/// Reads the fields. `symbol_at` is the byte offset where the instrument is written: numbers on its line
/// before any label are the entry (`XAUUSD 2,345.50 sell`).
pub(crate) fn extract(lexed: &Lexed, mode: Mode, symbol_at: Option<usize>) -> Fields {
    let toks = &lexed.tokens;
    let mut f = Fields::default();
    let mut field = Field::None;
    let mut line_start = true;
    let mut prev_word: Option<&str> = None;
    let mut prev_label_word = false;
    let mut sep: Option<char> = None;
    let mut lev_max: Option<u32> = None;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Kind::Newline => {
                line_start = true;
                prev_word = None;
                prev_label_word = false;
                sep = None;
            }
            Kind::Punct(c) => {
                if let Some(l) = emoji_label(c, mode) {
                    field = l;
                    line_start = false;
                    sep = None;
                } else {
                    sep = Some(c);
                }
            }
            Kind::Word { .. } => {
                let w = lexed.word(t).unwrap_or("");
                let label = word_label(w, prev_word, mode);
                if line_start {
                    line_start = false;
                    if label.is_none() {
                        let at_symbol = symbol_at.is_some_and(|s| s == t.start as usize);
                        field = if at_symbol && mode == Mode::Open && f.entries.is_empty() {
                            Field::Entry
                        } else {
                            Field::None
                        };
                    }
                }
                if matches!(w, "market" | "cmp" | "mkt") {
                    f.market = true;
                }
                if let Some(l) = label {
                    field = l;
                }
                prev_label_word = label.is_some();
                prev_word = Some(w);
                sep = None;
            }
            Kind::Num(n) => {
                line_start = false;
                let glued_to_word = t.glued && prev_word.is_some() && !prev_label_word && prev_is_word(toks, i);
                prev_word = None;
                if n.lev {
                    bump_lev(n.value, &mut lev_max);
                    sep = None;
                    continue;
                }
                if n.id || n.percent || n.glued_alpha_after || is_index(toks, i, lexed, prev_label_word) {
                    continue;
                }
                // `US30`, `H4`: digits glued to an ordinary word belong to it.
                if glued_to_word {
                    continue;
                }
                if n.pips {
                    if field == Field::Sl && f.sl.is_none() && f.sl_pips.is_none() && mode == Mode::Open {
                        f.sl_pips = Some(n.value);
                    }
                    continue;
                }
                if is_time(toks, i) {
                    continue;
                }
                match field {
                    Field::Entry => f.entries.push(EntryNum { num: n, sep }),
                    Field::Sl => {
                        if f.sl.is_none() && f.sl_pips.is_none() {
                            f.sl = Some(n.value);
                        }
                    }
                    Field::Tp => f.tps.push(n.value),
                    Field::Lev => bump_lev(n.value, &mut lev_max),
                    Field::None | Field::Ignore => {}
                }
                sep = None;
                prev_label_word = false;
            }
        }
    }
    f.lev = lev_max;
    f
}

/// Leverage ranges (`10x-20x`) are labelled with their upper bound.
fn bump_lev(v: Decimal, lev_max: &mut Option<u32>) {
    use rust_decimal::prelude::ToPrimitive;
    if v.fract().is_zero()
        && v > Decimal::ZERO
        && v <= Decimal::ONE_THOUSAND
        && let Some(n) = v.to_u32()
    {
        *lev_max = Some(lev_max.map_or(n, |m| m.max(n)));
    }
}

fn prev_is_word(toks: &[Token], i: usize) -> bool {
    i.checked_sub(1).and_then(|p| toks.get(p)).is_some_and(|t| matches!(t.kind, Kind::Word { .. }))
}

/// List numbering, not a price: `TP1`, `Target 1:`, `1) 14.27`, `1. 14.27`.
fn is_index(toks: &[Token], i: usize, lexed: &Lexed, prev_label_word: bool) -> bool {
    let Some(Token { kind: Kind::Num(n), glued, .. }) = toks.get(i) else { return false };
    if !n.integer || n.value > Decimal::from(20) {
        return false;
    }
    let next = toks.get(i + 1).map(|t| t.kind);
    if matches!(next, Some(Kind::Punct(':' | ')'))) {
        return true;
    }
    // `TP1 8.019`: glued to its label.
    if *glued && prev_label_word && prev_is_word(toks, i) {
        let label = i.checked_sub(1).and_then(|p| toks.get(p)).and_then(|t| lexed.word(t)).unwrap_or("");
        if is_tp_word(label) || is_entry_word(label) || is_sl_word(label) || label == "take" {
            return true;
        }
    }
    // `Target 1 - 5.55`: a numbered label with a dash before its price. An integer price range
    // (`TP 5 - 6`) has an integer after the dash, so it is not taken for numbering.
    let label_before = || {
        let label = i.checked_sub(1).and_then(|p| toks.get(p)).and_then(|t| lexed.word(t)).unwrap_or("");
        is_tp_word(label) || is_entry_word(label) || is_sl_word(label) || label == "profit"
    };
    if prev_label_word
        && label_before()
        && matches!(next, Some(Kind::Punct('-' | '–' | '—')))
        && matches!(toks.get(i + 2).map(|t| t.kind), Some(Kind::Num(p)) if !p.integer)
    {
        return true;
    }
    // `1. 14.2780`, `1- 0.55` at the start of a line.
    let at_line_start = i == 0 || matches!(toks.get(i - 1).map(|t| t.kind), Some(Kind::Newline));
    let after = toks.get(i + 2);
    at_line_start
        && match next {
            Some(Kind::Punct('.')) => after.is_some_and(|t| !t.glued),
            Some(Kind::Punct('-' | '–' | '—')) => {
                after.is_some_and(|t| matches!(t.kind, Kind::Num(p) if !p.integer))
            }
            _ => false,
        }
}

/// `08:04:01`: parts of a clock time.
fn is_time(toks: &[Token], i: usize) -> bool {
    let colon_num = |a: Option<&Token>, b: Option<&Token>| {
        matches!(a.map(|t| t.kind), Some(Kind::Punct(':')))
            && a.is_some_and(|t| t.glued)
            && matches!(b.map(|t| t.kind), Some(Kind::Num(n)) if n.integer)
    };
    let before = i.checked_sub(1).and_then(|p| toks.get(p));
    let before2 = i.checked_sub(2).and_then(|p| toks.get(p));
    // Minutes and seconds are two digits under 60; `TP1:2360` is a label's number and a price.
    let minutes = |n: Num| n.integer && n.int_digits == 2 && n.value < Decimal::from(60);
    let integer_here = matches!(toks.get(i).map(|t| t.kind), Some(Kind::Num(n)) if minutes(n));
    integer_here && toks.get(i).is_some_and(|t| t.glued) && colon_num(before, before2)
}
