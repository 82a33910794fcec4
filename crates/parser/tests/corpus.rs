//! The parser against labelled messages: the corpus' dev set (every line must match on every field) and
//! this project's own held-out set (accuracy reported, and asserted at the level reached).

use serde_json::Value;

struct Case {
    line: usize,
    text: String,
    expected: Value,
}

fn load(file: &str) -> Vec<Case> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    data.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            Case { line: i + 1, text: v["text"].as_str().expect("text").to_string(), expected: v["expected"].clone() }
        })
        .collect()
}

/// Numbers compare by value (`53692.0` and `53692` are the same price); everything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        _ => a == b,
    }
}

const FIELDS: [&str; 7] = ["kind", "symbol", "side", "entry", "stop_loss", "take_profits", "leverage"];

/// The fields that differ, as `field: got X, want Y`.
fn diff(case: &Case) -> Vec<String> {
    let got = serde_json::to_value(parser::parse(&case.text)).expect("serialises");
    FIELDS
        .iter()
        .filter(|f| !same(&got[**f], &case.expected[**f]))
        .map(|f| format!("{f}: got {}, want {}", got[*f], case.expected[*f]))
        .collect()
}

fn report(file: &str) -> (usize, usize) {
    let cases = load(file);
    let mut right = 0;
    for case in &cases {
        let d = diff(case);
        if d.is_empty() {
            right += 1;
        } else {
            eprintln!("{file}:{} {:?}\n    {}", case.line, case.text, d.join("\n    "));
        }
    }
    eprintln!("{file}: {right}/{} messages with every field right", cases.len());
    (right, cases.len())
}

#[test]
fn every_dev_line_matches_on_every_field() {
    let (right, total) = report("signals_dev.jsonl");
    assert_eq!(total, 40);
    assert_eq!(right, total);
}

/// Written before the parser, but its first score (70/74) was followed by fixes made while looking at the
/// misses, so 0.97 here is an in-sample figure.
#[test]
fn heldout_accuracy() {
    let (right, total) = report("heldout.jsonl");
    assert!(total >= 60);
    let accuracy = right as f64 / total as f64;
    eprintln!("held-out accuracy {accuracy:.3}");
    assert!(accuracy >= 0.97, "held-out accuracy {accuracy:.3}");
}

/// A second held-out file, written after the parser had been tuned on the first. Its first score, 23/24
/// (0.958), is the out-of-sample figure, and the level asserted: one miss was fixed afterwards, so passing
/// at a higher level would no longer measure anything (see tests/data/README.md).
#[test]
fn fresh_heldout_accuracy() {
    let (right, total) = report("heldout2.jsonl");
    let accuracy = right as f64 / total as f64;
    eprintln!("fresh held-out accuracy {accuracy:.3}");
    assert!(accuracy >= 0.95, "fresh held-out accuracy {accuracy:.3}");
}

#[test]
fn output_has_exactly_the_seven_fields() {
    let got = serde_json::to_value(parser::parse("EURUSD BUY NOW @1.0850 SL 1.0800 TP 1.0950")).unwrap();
    let keys: Vec<&str> = got.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = FIELDS.to_vec();
    want.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, want);
    assert_eq!(serde_json::to_string(&got["entry"]).unwrap(), "1.085", "shortest number form");
}
