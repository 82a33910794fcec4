//! Amounts written the way refusal reasons show them to people: `−$512.40`, `$10,000.00`, `5%`.

use rust_decimal::{Decimal, RoundingStrategy};

/// Money to the cent with thousands separators, a real minus sign, and the currency's symbol where it has
/// a well-known one (else its code after the number).
pub fn money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() { "\u{2212}" } else { "" };
    let digits = format!("{:.2}", rounded.abs());
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match currency_symbol(currency) {
        Some(symbol) => format!("{sign}{symbol}{grouped}.{frac}"),
        None => format!("{sign}{grouped}.{frac} {currency}"),
    }
}

fn currency_symbol(currency: &str) -> Option<&'static str> {
    match currency {
        "USD" | "USDT" | "USDC" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        _ => None,
    }
}

/// A percentage as typed: `5%`, `2.5%`, no trailing zeros.
pub fn percent(value: Decimal) -> String {
    format!("{}%", value.normalize())
}

/// A size or distance without trailing zeros.
pub fn plain(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(dec!(-512.4), "USD"), "\u{2212}$512.40");
        assert_eq!(money(dec!(10000), "USD"), "$10,000.00");
        assert_eq!(money(dec!(1234567.891), "EUR"), "€1,234,567.89");
        assert_eq!(money(dec!(999.995), "GBP"), "£1,000.00");
        assert_eq!(money(dec!(-0.001), "USD"), "$0.00");
        assert_eq!(money(dec!(150), "JPY"), "150.00 JPY");
        assert_eq!(money(dec!(100), "USD"), "$100.00");
        assert_eq!(percent(dec!(5.00)), "5%");
        assert_eq!(percent(dec!(2.50)), "2.5%");
    }
}
