//! The parser against labelled messages: the corpus' dev set (every line must match on every field) and
//! this project's own held-out files (per-file accuracy printed, and asserted at the level measured).

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

/// The held-out files, each with the number of lines the parser gets fully right today: a floor, so any
/// regression fails. The first score each file got, before any fix was made against it, is the
/// out-of-sample figure (tests/data/README.md); the floors of files that were fixed against are in-sample.
const HELDOUT: &[(&str, usize, usize)] = &[
    // Written before the parser; first score 70/74, then fixed against.
    ("heldout.jsonl", 74, 74),
    // Written after tuning on heldout.jsonl; first score 23/24, then fixed against.
    ("heldout2.jsonl", 24, 24),
    // Written after tuning on the two above; first score 117/122 (0.959), then fixed against.
    ("heldout3.jsonl", 122, 122),
    // Written after the heldout3 fixes and measured untouched: the final out-of-sample figure. Not tuned on.
    ("heldout4.jsonl", 68, 68),
];

#[test]
fn every_heldout_file_stays_at_its_measured_accuracy() {
    let mut failures = Vec::new();
    let (mut all_right, mut all_total) = (0, 0);
    for &(file, floor, lines) in HELDOUT {
        let (right, total) = report(file);
        eprintln!("{file}: accuracy {:.3}", right as f64 / total as f64);
        assert_eq!(total, lines, "{file}: line count changed");
        if right < floor {
            failures.push(format!("{file}: {right}/{total}, floor {floor}"));
        }
        all_right += right;
        all_total += total;
    }
    eprintln!("all held-out files: {all_right}/{all_total} ({:.3})", all_right as f64 / all_total as f64);
    assert!(failures.is_empty(), "below the floor: {}", failures.join("; "));
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
