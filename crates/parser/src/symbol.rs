//! Finding the instrument a message is about and writing it the way LABELS.md does: `BTC/USDT` →
//! `BTCUSDT`, `Eur/Usd` → `EURUSD`, `GOLD` → `XAUUSD`, a bare coin → coin + `USDT` in a crypto context.

/// A run of letters and digits in the text, with what stands around it.
#[derive(Debug, Clone, Copy)]
struct Chunk<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    /// The character just before the chunk (`#`, `$`, ...), or a space.
    prev: char,
}

/// The symbol a message names, where it was written, and whether it was found as a pair or a known name
/// (strong) or only as a ticker-looking word (which then needs the crypto context to get `USDT`).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub start: usize,
    pub kind: FoundKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FoundKind {
    /// Already complete: a pair, a forex cross, an alias, an index.
    Complete,
    /// A bare ticker: a coin in a crypto context, otherwise a stock.
    Ticker,
}

const FIAT: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SGD", "HKD", "NOK", "SEK", "DKK", "MXN", "ZAR", "TRY",
    "PLN", "CNH", "HUF", "CZK",
];
const METALS: &[&str] = &["XAU", "XAG", "XPT", "XPD"];
/// Quotes that make a crypto pair when glued to a coin (`BTCUSDT`).
const CRYPTO_QUOTES: &[&str] = &["USDT", "USDC", "BUSD", "FDUSD", "TUSD"];
const PAIR_QUOTES: &[&str] =
    &["USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "BTC", "ETH"];
const INDICES: &[&str] = &[
    "US30", "US100", "US500", "US2000", "NAS100", "NAS", "NDX", "SPX500", "SPX", "SP500", "GER40", "GER30", "DE40",
    "DE30", "DAX", "DAX40", "UK100", "FTSE", "FTSE100", "JP225", "JPN225", "NIKKEI", "HK50", "FRA40", "EU50",
    "STOXX50", "AUS200", "USOIL", "UKOIL", "WTI", "BRENT", "XTIUSD", "XBRUSD", "NGAS", "DJ30", "DJI", "USTEC",
    "US30CASH", "NATGAS", "SPX",
];
/// Coins common enough that a bare mention (`long sol`) means the USDT pair.
const COINS: &[&str] = &[
    "BTC", "ETH", "SOL", "XRP", "BNB", "ADA", "DOGE", "DOT", "AVAX", "LINK", "MATIC", "POL", "LTC", "TRX", "SHIB",
    "UNI", "ATOM", "XLM", "ETC", "FIL", "APT", "ARB", "OP", "NEAR", "INJ", "SUI", "SEI", "TIA", "WIF", "PEPE", "BONK",
    "FLOKI", "AAVE", "MKR", "LDO", "RNDR", "RENDER", "FET", "AGIX", "GRT", "SAND", "MANA", "AXS", "GALA", "IMX", "STX",
    "ICP", "HBAR", "VET", "ALGO", "EGLD", "FTM", "CRV", "SNX", "COMP", "DYDX", "GMX", "RUNE", "KAVA", "ZIL", "ENS",
    "APE", "CHZ", "BLUR", "ORDI", "WLD", "PYTH", "JUP", "JTO", "STRK", "ZK", "ENA", "ETHFI", "TON", "BCH", "EOS",
    "XMR", "XTZ", "THETA", "FLOW", "NEO", "KAS", "TAO", "ONDO", "PENDLE", "BOME", "TRB", "MINA", "ROSE", "CFX", "KSM",
    "ZEC", "DASH", "IOTA", "ONE", "CELO", "QNT", "GMT", "LUNA", "LUNC", "MASK", "SSV", "RPL", "CAKE", "1INCH", "SUSHI",
    "YFI", "BAT", "ZRX", "ANKR", "HOOK", "MAGIC", "ID", "ARKM", "CYBER", "MEME", "NOT", "W", "TRUMP", "POPCAT",
    "BRETT",
];
/// Words that look like tickers but are the message's own vocabulary.
const STOPWORDS: &[&str] = &[
    "LONG",
    "SHORT",
    "BUY",
    "SELL",
    "NOW",
    "ENTRY",
    "ENTER",
    "TP",
    "TPS",
    "SL",
    "STOP",
    "LOSS",
    "TARGET",
    "TARGETS",
    "LEV",
    "LEVERAGE",
    "CMP",
    "MARKET",
    "LIMIT",
    "PAIR",
    "COIN",
    "SIGNAL",
    "SIGNALS",
    "NEW",
    "TRADE",
    "VIP",
    "FREE",
    "SPOT",
    "FUTURES",
    "FUTURE",
    "BINANCE",
    "BYBIT",
    "KRAKEN",
    "OKX",
    "BITGET",
    "MEXC",
    "KUCOIN",
    "PERP",
    "CALL",
    "ALERT",
    "UPDATE",
    "CLOSE",
    "CLOSED",
    "USD",
    "USDT",
    "THE",
    "AND",
    "FOR",
    "ZONE",
    "AT",
    "HERE",
    "TERM",
    "MID",
    "TYPE",
    "HOLD",
    "SWING",
    "SCALP",
    "CROSS",
    "ISOLATED",
    "BE",
    "RR",
    "PNL",
    "ROI",
    "GM",
    "GN",
    "OK",
    "TAKE",
    "PROFIT",
    "HIT",
    "ALL",
    "IN",
    "ON",
    "OF",
    "TO",
    "IS",
    "IT",
    "MY",
    "WE",
    "I",
    "A",
    "AN",
    "OR",
    "NO",
    "SO",
    "UP",
    "RISK",
    "LOW",
    "HIGH",
    "MEDIUM",
    "PRICE",
    "SIDE",
    "DIRECTION",
    "EXCHANGE",
    "SETUP",
    "ORDER",
    "POSITION",
    "NOTE",
    "IMPORTANT",
    "UTC",
    "GMT",
    "EST",
    "TP1",
    "TP2",
    "TP3",
    "TP4",
    "SL1",
    "DCA",
    "BUYING",
    "SELLING",
    "COMPRA",
    "VENDA",
    "ЛОНГ",
    "ШОРТ",
    "NFA",
    "DYOR",
    "ATH",
    "ATL",
    "FOMO",
    "BREAKING",
    "NEWS",
    "TODAY",
    "LONDON",
    "NEW YORK",
    "ASIA",
    "FED",
    "CPI",
    "NFP",
    "FOMC",
    "GDP",
    "ECB",
    "BOE",
    "BOJ",
    "RBA",
    "SNB",
    "BOC",
    "HODL",
    "BULL",
    "BEAR",
    "BULLISH",
    "BEARISH",
    "EARLY",
    "TRADING",
    "PLAN",
    "RESULTS",
    "WIN",
    "WINS",
    "LOSSES",
    "AM",
    "PM",
    "USA",
    "UK",
    "EU",
];

fn is_in(list: &[&str], s: &str) -> bool {
    list.contains(&s)
}

fn is_side_word(lower: &str) -> bool {
    matches!(lower, "long" | "short" | "buy" | "sell" | "лонг" | "шорт" | "compra" | "venda" | "bullish" | "bearish")
}

/// Words after which a bare coin or ticker is the instrument: `Pair: XRP`, `New TP for SOL`.
fn is_pointer_word(lower: &str) -> bool {
    matches!(
        lower,
        "pair"
            | "coin"
            | "symbol"
            | "asset"
            | "ticker"
            | "instrument"
            | "close"
            | "exit"
            | "cancel"
            | "for"
            | "on"
            | "the"
            | "par"
            | "ativo"
            | "монета"
            | "пара"
    )
}

/// Runs `f` on the word in lower case, without allocating for the short ASCII words that are all a side or
/// pointer word can be.
fn with_lower(word: &str, f: impl Fn(&str) -> bool) -> bool {
    if word.len() > 12 {
        return false;
    }
    if word.is_ascii() {
        let mut buf = [0u8; 12];
        let lower = &mut buf[..word.len()];
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        std::str::from_utf8(lower).is_ok_and(f)
    } else {
        f(&word.to_lowercase())
    }
}

fn chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut out = Vec::with_capacity(16);
    let mut start: Option<usize> = None;
    let mut prev = ' ';
    let mut before = ' ';
    for (i, c) in text.char_indices() {
        let alnum = c.is_alphanumeric();
        match (alnum, start) {
            (true, None) => {
                start = Some(i);
                before = prev;
            }
            (false, Some(s)) => {
                out.push(Chunk { text: &text[s..i], start: s, end: i, prev: before });
                start = None;
            }
            _ => {}
        }
        prev = c;
    }
    if let Some(s) = start {
        out.push(Chunk { text: &text[s..], start: s, end: text.len(), prev: before });
    }
    out
}

fn starts_with_letter(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_alphabetic)
}

/// An upper-case ticker as written: `AAPL`, `PETR4`, `SOL`.
fn looks_like_ticker(original: &str) -> bool {
    let n = original.chars().count();
    (2..=6).contains(&n)
        && starts_with_letter(original)
        && original.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Finds the instrument: the first complete name (pair, cross, alias, index) wins; otherwise the first
/// tagged or pointed-at ticker; otherwise an upper-case ticker opening the message.
pub(crate) fn find(text: &str) -> Option<Found> {
    let chunks = chunks(text);
    let mut tagged: Option<Found> = None;
    let mut opening: Option<Found> = None;
    for (idx, c) in chunks.iter().enumerate() {
        if c.text.len() > 24 || c.text.bytes().all(|b| b.is_ascii_digit()) || !c.text.is_ascii() {
            continue;
        }
        // Chunks are at most 24 ASCII bytes here, so upper-casing needs no allocation.
        let mut upper_buf = [0u8; 24];
        let Some(upper_bytes) = upper_buf.get_mut(..c.text.len()) else { continue };
        upper_bytes.copy_from_slice(c.text.as_bytes());
        upper_bytes.make_ascii_uppercase();
        let Ok(upper) = std::str::from_utf8(upper_bytes) else { continue };
        let next = chunks.get(idx + 1);
        let gap = next.and_then(|n| text.get(c.end..n.start));
        // A pair written with a separator: `BTC/USDT`, `XAU/USD`, `Eur/Usd`, `EUR USD`, `BTC-USDT`.
        if let (Some(n), Some(gap)) = (next, gap)
            && n.text.is_ascii()
            && c.text.bytes().any(|b| b.is_ascii_alphabetic())
        {
            let quote = n.text.to_ascii_uppercase();
            let base_ok = is_in(FIAT, upper) || is_in(METALS, upper) || !is_in(STOPWORDS, upper);
            if is_in(PAIR_QUOTES, &quote) && base_ok {
                let tight = matches!(gap, "/" | "-" | " / " | "_");
                let spaced = gap == " " && (is_in(FIAT, upper) || is_in(METALS, upper)) && is_in(FIAT, &quote);
                if tight || spaced {
                    let base = if is_in(CRYPTO_QUOTES, upper) || upper == "USD" && !is_in(FIAT, &quote) {
                        None
                    } else {
                        Some(upper)
                    };
                    if let Some(base) = base {
                        return Some(Found {
                            start: c.start,
                            kind: FoundKind::Complete,
                            text: format!("{base}{quote}"),
                        });
                    }
                }
            }
        }
        if let Some(complete) = complete_name(upper, c.prev) {
            return Some(Found { start: c.start, kind: FoundKind::Complete, text: complete });
        }
        if tagged.is_none() {
            let tag = matches!(c.prev, '#' | '$') && starts_with_letter(c.text) && !is_in(STOPWORDS, upper);
            // Cheapest test first: most words stand beside no side word, and need no list look-up.
            let beside_side = || {
                idx.checked_sub(1)
                    .and_then(|p| chunks.get(p))
                    .is_some_and(|p| with_lower(p.text, |pl| is_side_word(pl) || is_pointer_word(pl)))
                    || next.is_some_and(|n| with_lower(n.text, is_side_word))
            };
            let tickerish = || (looks_like_ticker(c.text) && !is_in(STOPWORDS, upper)) || is_in(COINS, upper);
            if (tag && upper.len() <= 10) || (beside_side() && !with_lower(c.text, is_side_word) && tickerish()) {
                tagged = Some(Found { start: c.start, kind: FoundKind::Ticker, text: upper.to_string() });
            }
        }
        if idx == 0 && looks_like_ticker(c.text) && !is_in(STOPWORDS, upper) {
            opening = Some(Found { start: c.start, kind: FoundKind::Ticker, text: upper.to_string() });
        }
    }
    tagged.or(opening)
}

/// A name that is an instrument on its own: `BTCUSDT`, `EURUSD`, `GOLD`, `US30`.
fn complete_name(upper: &str, prev: char) -> Option<String> {
    match upper {
        "GOLD" | "XAU" | "ЗОЛОТО" | "OURO" => return Some("XAUUSD".into()),
        "SILVER" | "XAG" | "СЕРЕБРО" | "PRATA" => return Some("XAGUSD".into()),
        // Coins called by name are traded against USDT like their tickers.
        "BITCOIN" | "БИТКОИН" => return Some("BTCUSDT".into()),
        "ETHEREUM" | "ЭФИР" => return Some("ETHUSDT".into()),
        _ => {}
    }
    if is_in(INDICES, upper) {
        return Some(upper.to_string());
    }
    for q in CRYPTO_QUOTES {
        if upper.len() > q.len() && upper.ends_with(q) {
            return Some(upper.to_string());
        }
    }
    if upper.len() == 6 && upper.is_char_boundary(3) {
        let (base, quote) = upper.split_at(3);
        if (is_in(FIAT, base) || is_in(METALS, base)) && is_in(FIAT, quote) && base != quote {
            return Some(upper.to_string());
        }
    }
    // `#APTUSD`, `BTCUSD`: a coin quoted in dollars keeps its USD quote.
    if let Some(base) = upper.strip_suffix("USD")
        && !base.is_empty()
        && (matches!(prev, '#' | '$') || is_in(COINS, base))
    {
        return Some(upper.to_string());
    }
    None
}

/// Whether a ticker is a coin: it is a known one, or the message is about crypto.
pub(crate) fn resolve(found: &Found, crypto_context: bool) -> String {
    match found.kind {
        FoundKind::Complete => found.text.clone(),
        FoundKind::Ticker if crypto_context || is_in(COINS, &found.text) => format!("{}USDT", found.text),
        FoundKind::Ticker => found.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(text: &str, crypto: bool) -> Option<String> {
        find(text).map(|f| resolve(&f, crypto))
    }

    #[test]
    fn crypto_forms_become_one_word() {
        for text in ["BTC/USDT long", "#BTCUSDT", "$BTC/USDT", "BTC-USDT", "BTCUSDT.P", "BTC/USDT:USDT", "BTCUSDT PERP"]
        {
            assert_eq!(sym(text, false).as_deref(), Some("BTCUSDT"), "{text}");
        }
        assert_eq!(sym("long sol 145", false).as_deref(), Some("SOLUSDT"));
        assert_eq!(sym("Pair: XRP LONG", false).as_deref(), Some("XRPUSDT"));
        assert_eq!(sym("💎 BUY #APT/USD at #KRAKEN", false).as_deref(), Some("APTUSD"));
        assert_eq!(sym("1000PEPEUSDT LONG", false).as_deref(), Some("1000PEPEUSDT"));
        assert_eq!(sym("opusdt short", false).as_deref(), Some("OPUSDT"));
        assert_eq!(sym("Pair: 1000PEPE/USDT LONG", false).as_deref(), Some("1000PEPEUSDT"));
    }

    #[test]
    fn forex_metals_indices_stocks() {
        assert_eq!(sym("Eur/Usd buy", false).as_deref(), Some("EURUSD"));
        assert_eq!(sym("EUR USD BUY", false).as_deref(), Some("EURUSD"));
        assert_eq!(sym("Gbp cad sell", false).as_deref(), Some("GBPCAD"));
        assert_eq!(sym("Usdcad buy now", false).as_deref(), Some("USDCAD"));
        assert_eq!(sym("GOLD BUY", false).as_deref(), Some("XAUUSD"));
        assert_eq!(sym("XAU/USD sell", false).as_deref(), Some("XAUUSD"));
        assert_eq!(sym("silver sell", false).as_deref(), Some("XAGUSD"));
        assert_eq!(sym("Bitcoin short 64,500", false).as_deref(), Some("BTCUSDT"));
        assert_eq!(sym("US30 SELL", false).as_deref(), Some("US30"));
        assert_eq!(sym("nas100 buy", false).as_deref(), Some("NAS100"));
        assert_eq!(sym("AAPL long 189.50", false).as_deref(), Some("AAPL"));
        assert_eq!(sym("$TSLA long", false).as_deref(), Some("TSLA"));
        assert_eq!(sym("Long WIF now", true).as_deref(), Some("WIFUSDT"), "a coin in a crypto context");
    }

    #[test]
    fn vocabulary_is_not_a_symbol() {
        assert_eq!(sym("BUY NOW", false), None);
        assert_eq!(sym("Hit like if you made money", false), None);
    }
}
