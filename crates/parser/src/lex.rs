//! The tokenizer: one pass over the text that turns it into words, numbers, punctuation and line breaks.
//!
//! Number forms are settled here, because they need the raw characters around them: thousands separators
//! against decimal commas, the `k` suffix, `20x` leverage, percentages and pip counts.

use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// A run of letters; `lower` indexes its lower-case form in [`Lexed::lower`].
    Word {
        lower_start: u32,
        lower_end: u32,
    },
    Num(Num),
    Punct(char),
    Newline,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Num {
    pub value: Decimal,
    /// Digits after the decimal point as written (`164.30` has 2); 0 for an integer.
    pub frac_digits: u8,
    /// Digits before the decimal point, thousands separators excluded.
    pub int_digits: u8,
    pub integer: bool,
    /// Followed by `%`, or the first end of a range that is (`3-4%`).
    pub percent: bool,
    /// Followed by `pips`/`points`.
    pub pips: bool,
    /// `20x`, `×10`, `20х`: a leverage figure wherever it stands.
    pub lev: bool,
    /// Glued to letters after it (`4H`, `15m`, `1000PEPE`): part of a name, not a price.
    pub glued_alpha_after: bool,
    /// Directly after `#` or `&` (an id or mention), or a duration (`2 weeks`): not a price.
    pub id: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: u32,
    /// No whitespace between this token and the one before it.
    pub glued: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub lower: String,
}

impl Lexed {
    pub fn word(&self, t: &Token) -> Option<&str> {
        match t.kind {
            Kind::Word { lower_start, lower_end } => self.lower.get(lower_start as usize..lower_end as usize),
            _ => None,
        }
    }
}

/// Characters that only decorate: markdown, variation selectors, joiners and skin tones.
fn is_decoration(c: char) -> bool {
    matches!(c, '*' | '`' | '~' | '\u{FE0F}' | '\u{FE0E}' | '\u{200D}' | '\u{200B}' | '\u{1F3FB}'..='\u{1F3FF}')
}

fn is_x(c: char) -> bool {
    matches!(c, 'x' | 'X' | 'х' | 'Х' | '×')
}

pub(crate) fn lex(text: &str) -> Lexed {
    let bytes = text.as_bytes();
    let mut out = Lexed { tokens: Vec::with_capacity(text.len() / 3 + 4), lower: String::with_capacity(text.len()) };
    let mut i = 0usize;
    let mut glued = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            let (num, next) = lex_number(text, i);
            let prev = i.checked_sub(1).and_then(|p| bytes.get(p)).copied();
            let mut num = num;
            if matches!(prev, Some(b'#' | b'&')) {
                num.id = true;
            }
            // `×10`, `x10`: a multiplication sign glued before the number.
            if let Some(last) = out.tokens.last()
                && glued
            {
                match last.kind {
                    Kind::Punct('×') => num.lev = true,
                    Kind::Word { lower_start, lower_end }
                        if matches!(out.lower.get(lower_start as usize..lower_end as usize), Some("x" | "х")) =>
                    {
                        num.lev = true
                    }
                    _ => {}
                }
            }
            out.tokens.push(Token { kind: Kind::Num(num), start: i as u32, glued });
            i = next;
            glued = true;
            continue;
        }
        let Some(c) = text.get(i..).and_then(|s| s.chars().next()) else { break };
        let len = c.len_utf8();
        if c == '\n' {
            out.tokens.push(Token { kind: Kind::Newline, start: i as u32, glued: false });
            i += len;
            glued = false;
            continue;
        }
        if c.is_whitespace() {
            i += len;
            glued = false;
            continue;
        }
        if is_decoration(c) {
            i += len;
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            let mut end = i;
            for (off, ch) in text[i..].char_indices() {
                if ch.is_alphabetic() {
                    end = i + off + ch.len_utf8();
                } else {
                    break;
                }
            }
            let mut word = &text[start..end];
            // `S/L`, `T/P`: one label written with a slash.
            if let (Some(first @ ("s" | "S" | "t" | "T")), Some(b'/'), Some(second)) =
                (text.get(start..end), bytes.get(end), bytes.get(end + 1))
                && matches!((first, second), ("s" | "S", b'l' | b'L') | ("t" | "T", b'p' | b'P'))
                && !text.get(end + 2..).and_then(|r| r.chars().next()).is_some_and(char::is_alphanumeric)
            {
                end += 2;
                word = if matches!(first, "s" | "S") { "sl" } else { "tp" };
            }
            // Links carry digits that are not prices; skip to the next whitespace.
            if word.eq_ignore_ascii_case("http")
                || word.eq_ignore_ascii_case("https")
                || word.eq_ignore_ascii_case("www")
            {
                i = skip_to_space(text, end);
                glued = false;
                continue;
            }
            let lower_start = out.lower.len() as u32;
            if word.is_ascii() {
                out.lower.extend(word.bytes().map(|b| b.to_ascii_lowercase() as char));
            } else {
                for ch in word.chars() {
                    out.lower.extend(ch.to_lowercase());
                }
            }
            let lower_end = out.lower.len() as u32;
            out.tokens.push(Token { kind: Kind::Word { lower_start, lower_end }, start: start as u32, glued });
            i = end;
            glued = true;
            continue;
        }
        // Mentions (`@name`, `<@&123>`) name people and roles, never prices.
        if c == '@' || c == '<' {
            let next = text.get(i + 1..).and_then(|s| s.chars().next());
            if next.is_some_and(|n| n.is_alphabetic() || n == '&' || n == '!' || n == '@' || n == '_') {
                i = skip_to_space(text, i + 1);
                glued = false;
                continue;
            }
        }
        if c == '%' {
            mark_last_num(&mut out, |n| n.percent = true);
            i += len;
            continue;
        }
        out.tokens.push(Token { kind: Kind::Punct(c), start: i as u32, glued });
        i += len;
        glued = true;
    }
    post_pass(&mut out);
    out
}

fn skip_to_space(text: &str, from: usize) -> usize {
    text.get(from..)
        .and_then(|rest| rest.char_indices().find(|(_, c)| c.is_whitespace() || *c == '>').map(|(o, _)| from + o))
        .unwrap_or(text.len())
}

fn mark_last_num(out: &mut Lexed, f: impl FnOnce(&mut Num)) {
    if let Some(Token { kind: Kind::Num(n), .. }) = out.tokens.last_mut() {
        f(n);
    }
}

/// Marks that need the tokens on both sides: `3-4%` and `+32 pips`.
fn post_pass(out: &mut Lexed) {
    let n = out.tokens.len();
    for i in 0..n {
        let Kind::Num(num) = out.tokens[i].kind else { continue };
        // `3-4%`, `2 to 5%`: the first end of a percentage range.
        if !num.percent
            && let (Some(sep), Some(next)) = (out.tokens.get(i + 1), out.tokens.get(i + 2))
            && matches!(sep.kind, Kind::Punct('-' | '–' | '/'))
            && let Kind::Num(b) = next.kind
            && b.percent
            && let Kind::Num(a) = &mut out.tokens[i].kind
        {
            a.percent = true;
        }
        if let Some(next) = out.tokens.get(i + 1)
            && let Some(w) = out.word(next)
        {
            let pips = matches!(w, "pips" | "pip" | "points" | "pts" | "пунктов" | "пипсов" | "пункта" | "pontos");
            let duration = matches!(
                w,
                "weeks"
                    | "week"
                    | "days"
                    | "day"
                    | "hours"
                    | "hour"
                    | "minutes"
                    | "minute"
                    | "mins"
                    | "months"
                    | "month"
            );
            if let Kind::Num(a) = &mut out.tokens[i].kind {
                a.pips |= pips;
                a.id |= duration;
            }
        }
    }
}

/// Reads a number at `start` (an ASCII digit) and returns it with the index after it.
fn lex_number(text: &str, start: usize) -> (Num, usize) {
    let bytes = text.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let run = |mut i: usize| {
        let s = i;
        while digit(i) {
            i += 1;
        }
        (s, i)
    };
    // The mantissa's digits, kept as text so an over-long number is dropped rather than overflowing.
    let mut mantissa: i128 = 0;
    let mut sig = 0u32;
    let mut overflow = false;
    let mut push = |d: u8| {
        if sig >= 27 {
            overflow = true;
            return;
        }
        mantissa = mantissa * 10 + i128::from(d - b'0');
        if mantissa != 0 {
            sig += 1;
        }
    };
    let (s, mut i) = run(start);
    let mut int_digits = (i - s) as u32;
    for &d in &bytes[s..i] {
        push(d);
    }
    let mut frac: u32 = 0;
    let mut thousands = false;
    loop {
        match bytes.get(i) {
            Some(b',') if frac == 0 && digit(i + 1) => {
                let (fs, fe) = run(i + 1);
                let n = fe - fs;
                if n == 3 {
                    thousands = true;
                    for &d in &bytes[fs..fe] {
                        push(d);
                    }
                    int_digits += 3;
                    i = fe;
                } else if !thousands && (n <= 2 || int_digits <= 3) {
                    // A decimal comma: `151,85`, `1,0850`.
                    for &d in &bytes[fs..fe] {
                        push(d);
                    }
                    frac = n as u32;
                    i = fe;
                    break;
                } else {
                    // `3380,3300`: a list separator.
                    break;
                }
            }
            Some(b'.') if frac == 0 && digit(i + 1) => {
                let (fs, fe) = run(i + 1);
                for &d in &bytes[fs..fe] {
                    push(d);
                }
                frac = (fe - fs) as u32;
                i = fe;
                break;
            }
            _ => break,
        }
    }
    let mut num = Num {
        value: Decimal::ZERO,
        frac_digits: frac.min(255) as u8,
        int_digits: int_digits.min(255) as u8,
        integer: frac == 0,
        percent: false,
        pips: false,
        lev: false,
        glued_alpha_after: false,
        id: false,
    };
    let value = if overflow || frac > 28 { None } else { Decimal::try_from_i128_with_scale(mantissa, frac).ok() };
    let after = |i: usize| text.get(i..).and_then(|s| s.chars().next());
    // Suffixes: `42.5k` thousands, `20x` leverage; any other letter glued on makes it part of a name.
    if let Some(c) = after(i) {
        let next_is_alpha = after(i + c.len_utf8()).is_some_and(char::is_alphanumeric);
        if matches!(c, 'k' | 'K') && !next_is_alpha {
            i += 1;
            num.value = value.and_then(|v| v.checked_mul(Decimal::ONE_THOUSAND)).unwrap_or_default();
            num.integer = num.value.fract().is_zero();
            if value.is_none() {
                num.id = true;
            }
            return (num, i);
        }
        if is_x(c) && !next_is_alpha {
            num.lev = true;
            i += c.len_utf8();
        } else if c.is_alphabetic() {
            num.glued_alpha_after = true;
        }
    }
    match value {
        Some(v) => num.value = v,
        None => num.id = true,
    }
    (num, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn nums(text: &str) -> Vec<Num> {
        lex(text).tokens.iter().filter_map(|t| if let Kind::Num(n) = t.kind { Some(n) } else { None }).collect()
    }

    #[test]
    fn thousands_and_decimal_commas() {
        assert_eq!(nums("42,800")[0].value, dec!(42800));
        assert_eq!(nums("3,245.5")[0].value, dec!(3245.5));
        assert_eq!(nums("1,234,567")[0].value, dec!(1234567));
        assert_eq!(nums("151,85")[0].value, dec!(151.85));
        assert_eq!(nums("590,50")[0].value, dec!(590.50));
        assert_eq!(nums("1,0850")[0].value, dec!(1.0850));
        let list = nums("1.3420,1.3077");
        assert_eq!((list[0].value, list[1].value), (dec!(1.3420), dec!(1.3077)));
        let list = nums("3380,3300");
        assert_eq!((list[0].value, list[1].value), (dec!(3380), dec!(3300)));
    }

    #[test]
    fn suffixes() {
        assert_eq!(nums("42.5k")[0].value, dec!(42500));
        assert_eq!(nums("61.2K,")[0].value, dec!(61200));
        let n = nums("20x")[0];
        assert!(n.lev && n.value == dec!(20));
        assert!(nums("×10")[0].lev);
        assert!(nums("20х")[0].lev, "Cyrillic х");
        assert!(nums("x25")[0].lev);
        assert!(nums("4H")[0].glued_alpha_after);
        let l = lex("S/L 1.07 T/p: 1.09 s/lot");
        let words: Vec<&str> = l.tokens.iter().filter_map(|t| l.word(t)).collect();
        assert_eq!(words, ["sl", "tp", "s", "lot"]);
        assert!(nums("(2.20%)")[0].percent);
        assert!(nums("3-4%")[0].percent);
        assert!(nums("+32 pips")[0].pips);
        assert!(nums("#2813388")[0].id);
        assert!(nums("up to 2 weeks")[0].id);
        assert!(!nums("@1.0850")[0].id);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let n = nums("123456789012345678901234567890123456789")[0];
        assert!(n.id, "an unrepresentable number is set aside");
    }
}
