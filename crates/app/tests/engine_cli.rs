//! `signalpost scan` and `signalpost train` as a user runs them, and `serve` storing engine signals as the
//! replay crosses candle closes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_signalpost");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn signalpost(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("SIGNALPOST_MODEL").env("RUST_LOG", "warn").output().unwrap()
}

const EURUSD: &str = "crates/market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz";
const EURUSD_300: &str = "crates/market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz";

#[test]
fn scan_prints_one_json_object_per_signal_with_the_documented_fields() {
    let out = signalpost(&[
        "scan",
        "--candles",
        repo(EURUSD_300).to_str().unwrap(),
        "--symbol",
        "EURUSD",
        "--timeframe",
        "1h",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "300 hours of EURUSD give at least one candidate");
    for s in &lines {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "time",
            "symbol",
            "timeframe",
            "side",
            "entry",
            "stop_loss",
            "take_profit",
            "confidence",
            "stage1_prob",
            "stage2_prob",
            "model_version",
        ] {
            assert!(keys.contains(&key), "missing {key} in {s}");
        }
        let (entry, sl, tp) =
            (s["entry"].as_f64().unwrap(), s["stop_loss"].as_f64().unwrap(), s["take_profit"].as_f64().unwrap());
        match s["side"].as_str().unwrap() {
            "long" => assert!(sl < entry && entry < tp, "{s}"),
            "short" => assert!(tp < entry && entry < sl, "{s}"),
            other => panic!("side {other}"),
        }
        assert!(s["model_version"].as_str().unwrap().starts_with("reversal-lr-v1-"));
        assert!(chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).is_ok());
    }
    // --min-confidence filters, and nothing passes a threshold above every confidence.
    let max = lines.iter().map(|s| s["confidence"].as_f64().unwrap()).fold(0.0, f64::max);
    let out = signalpost(&[
        "scan",
        "--candles",
        repo(EURUSD_300).to_str().unwrap(),
        "--symbol",
        "EURUSD",
        "--timeframe",
        "1h",
        "--json",
        "--min-confidence",
        &format!("{}", max + 0.0001),
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
}

#[test]
fn scan_refuses_bad_input_with_a_clear_error() {
    let file = repo(EURUSD_300);
    let file = file.to_str().unwrap();
    let wrong_tf = signalpost(&["scan", "--candles", file, "--symbol", "EURUSD", "--timeframe", "4h"]);
    assert!(!wrong_tf.status.success());
    assert!(String::from_utf8_lossy(&wrong_tf.stderr).contains("holds 1h candles, not 4h"));
    let unknown = signalpost(&["scan", "--candles", file, "--symbol", "EURUDS", "--timeframe", "1h"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("did you mean EURUSD"));
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt-model.json");
    std::fs::write(&corrupt, "{\"format\": 1, \"weights\": [1, 2").unwrap();
    let out = signalpost(&[
        "scan",
        "--candles",
        file,
        "--symbol",
        "EURUSD",
        "--timeframe",
        "1h",
        "--model",
        corrupt.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt-model.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = signalpost(&[
        "scan",
        "--candles",
        file,
        "--symbol",
        "EURUSD",
        "--timeframe",
        "1h",
        "--model",
        "/nonexistent/model.json",
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.json"));
}

#[test]
fn train_reports_out_of_sample_figures_and_writes_a_model_scan_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let out = signalpost(&["train", "--candles", repo(EURUSD).to_str().unwrap(), "--out", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8(out.stdout).unwrap();
    for figure in [
        "AUC",
        "Brier score",
        "calibration by confidence decile",
        "every candidate",
        "confidence ≥ 0.5",
        "confidence ≥ 0.6",
        "confidence ≥ 0.7",
    ] {
        assert!(report.contains(figure), "report lacks {figure}:\n{report}");
    }
    let scan = signalpost(&[
        "scan",
        "--candles",
        repo(EURUSD_300).to_str().unwrap(),
        "--symbol",
        "EURUSD",
        "--timeframe",
        "1h",
        "--json",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(scan.status.success(), "{}", String::from_utf8_lossy(&scan.stderr));
    // Too little history is refused plainly rather than fitted badly.
    let small = signalpost(&[
        "train",
        "--candles",
        repo(EURUSD_300).to_str().unwrap(),
        "--out",
        dir.path().join("small.json").to_str().unwrap(),
    ]);
    assert!(!small.status.success());
    assert!(
        String::from_utf8_lossy(&small.stderr).contains("too little"),
        "{}",
        String::from_utf8_lossy(&small.stderr)
    );
}
