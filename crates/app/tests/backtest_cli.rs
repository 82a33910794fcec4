//! `signalpost backtest` as a user runs it: the real binary on candle files written into a temp dir, and on
//! the bundled 74,439-bar EURUSD file.
//!
//! The hand-made series is built so every figure can be worked out on paper (see [`hand_series`]).

use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_signalpost");

fn cli(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for var in ["SIGNALPOST_CONFIG", "SIGNALPOST_ACCOUNT_CURRENCY", "SIGNALPOST_MODEL", "RUST_BACKTRACE"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").arg("backtest").args(args).output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "should have failed; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Parses stdout as exactly one JSON object.
fn json(out: &Output) -> serde_json::Map<String, Value> {
    let text = stdout(out);
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    match serde_json::from_str::<Value>(&text).expect("stdout is JSON") {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn f(map: &serde_json::Map<String, Value>, key: &str) -> f64 {
    map.get(key).and_then(Value::as_f64).unwrap_or_else(|| panic!("{key} is not a number: {:?}", map.get(key)))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// 56 hourly EURUSD mid closes, flat bars (open = high = low = close) except the last:
///
/// - bars 0-29 at 1.2000, 30-39 at 1.1000, 40-49 at 1.3500, 50-54 at 1.0000, and bar 55 opening at
///   1.0000, ranging 0.9800-1.0100 and closing at 0.9900.
/// - SMA(10) and SMA(30) are equal at bar 29 (a touch, not a cross), then SMA(10) is below until bar 43,
///   where it is 1.2000 against 1.18667: a cross up, so a long fills at bar 44's open, 1.3500. At bar 54
///   SMA(10) falls to 1.1750 against 1.18333: a cross down, so at bar 55's open (1.0000) the long is closed
///   (-3,500 pips) and a short opened, which the end of the data closes at bar 55's close, 0.9900 (+100).
///
/// With `spread`, the file is in the bid/ask layout with that spread around each mid.
fn hand_series(spread: Option<f64>) -> String {
    let mut bars: Vec<[f64; 4]> = Vec::new();
    for (n, p) in [(30, 1.2), (10, 1.1), (10, 1.35), (5, 1.0)] {
        bars.extend(std::iter::repeat_n([p, p, p, p], n));
    }
    bars.push([1.0, 1.01, 0.98, 0.99]);
    let mut text = match spread {
        None => "time,open,high,low,close\n".to_string(),
        Some(_) => "time,bid_open,bid_high,bid_low,bid_close,ask_open,ask_high,ask_low,ask_close\n".to_string(),
    };
    for (i, b) in bars.iter().enumerate() {
        let time = chrono::DateTime::from_timestamp(1_704_067_200 + 3600 * i as i64, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match spread {
            None => writeln!(text, "{time},{:.4},{:.4},{:.4},{:.4}", b[0], b[1], b[2], b[3]).unwrap(),
            Some(s) => {
                let bid = b.map(|p| p - s / 2.0);
                let ask = b.map(|p| p + s / 2.0);
                writeln!(
                    text,
                    "{time},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5}",
                    bid[0], bid[1], bid[2], bid[3], ask[0], ask[1], ask[2], ask[3]
                )
                .unwrap()
            }
        }
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const REQUIRED: [&str; 9] =
    ["bars", "trades", "win_rate", "profit_factor", "net_pips", "net_profit", "max_drawdown", "sharpe", "seconds"];

#[test]
fn hand_made_series_gives_the_figures_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let candles = write(dir.path(), "hand.csv", &hand_series(None));
    let (csv, svg, trades) = (dir.path().join("eq.csv"), dir.path().join("eq.svg"), dir.path().join("trades.csv"));
    let out = cli(
        dir.path(),
        &[
            "--candles",
            candles.to_str().unwrap(),
            "--symbol",
            "EURUSD",
            "--timeframe",
            "1h",
            "--strategy",
            "sma-cross",
            "--lots",
            "0.1",
            "--json",
            "--equity-csv",
            csv.to_str().unwrap(),
            "--equity-svg",
            svg.to_str().unwrap(),
            "--trades-csv",
            trades.to_str().unwrap(),
        ],
    );
    let m = json(&out);
    for key in REQUIRED {
        assert!(m.contains_key(key), "missing {key}: {m:?}");
    }
    assert_eq!(m["bars"], 56);
    assert_eq!(m["trades"], 2);
    assert_eq!(m["closed_at_end"], 1);
    assert_eq!(m["skipped_entries"], 0);
    assert_eq!(m["win_rate"], 0.5);
    // 0.1 lot of EURUSD is $1 a pip: -3,500 pips is -$3,500, +100 pips is +$100.
    assert!(close(f(&m, "net_pips"), -3400.0));
    assert!(close(f(&m, "net_profit"), -3400.0));
    assert!(close(f(&m, "profit_factor"), 100.0 / 3500.0));
    assert!(close(f(&m, "final_balance"), 6600.0));
    // Closed-trade equity 10,000 → 6,500 → 6,600: the worst fall is 3,500, 35% of the 10,000 peak.
    assert!(close(f(&m, "max_drawdown"), 3500.0));
    assert!(close(f(&m, "max_drawdown_pct"), 35.0));
    // Per-trade returns on the initial balance, -35% and +1%, over the 55 hours from first bar to last.
    let (r1, r2) = (-0.35f64, 0.01f64);
    let mean = (r1 + r2) / 2.0;
    let sd = ((r1 - mean).powi(2) + (r2 - mean).powi(2)).sqrt();
    let per_year: f64 = 2.0 / (55.0 * 3600.0 / (365.25 * 86_400.0));
    assert!(close(f(&m, "sharpe"), mean / sd * per_year.sqrt()), "{}", m["sharpe"]);
    // Held from bar 44 to bar 55's open (11 hours), and from bar 55's open to its close (stamped at its open).
    assert!(close(f(&m, "avg_holding_hours"), 5.5));
    assert_eq!(m["avg_rr"], Value::Null, "no trade had a stop loss");
    assert!(f(&m, "seconds") >= 0.0);
    assert_eq!(m["strategy"], "sma-cross");
    assert_eq!(m["symbol"], "EURUSD");
    assert_eq!(m["spreads"], false);

    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(
        csv,
        "time,equity\n2024-01-01T00:00:00Z,10000.00\n2024-01-03T07:00:00Z,6500.00\n2024-01-03T07:00:00Z,6600.00\n"
    );
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(svg.matches("<svg").count(), 1);
    assert!(svg.contains("<polyline"), "the curve is drawn");
    assert!(svg.contains("sma-cross EURUSD 1h"), "the chart has its caption");
    let trades = std::fs::read_to_string(trades).unwrap();
    let rows: Vec<&str> = trades.lines().collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[1].starts_with("long,2024-01-02T20:00:00Z,2024-01-03T07:00:00Z,1.35,1,,,reverse,-3500,"));
    assert!(rows[2].starts_with("short,2024-01-03T07:00:00Z,2024-01-03T07:00:00Z,1,0.99,,,end_of_data,100,"));
}

#[test]
fn bid_ask_files_fill_at_the_bid_and_ask() {
    let dir = tempfile::tempdir().unwrap();
    let candles = write(dir.path(), "hand_ba.csv", &hand_series(Some(0.0002)));
    let args = ["--candles", candles.to_str().unwrap(), "--symbol", "EURUSD", "--timeframe", "1h", "--lots", "0.1"];
    let out = cli(dir.path(), &[&args[..], &["--strategy", "sma-cross", "--json"]].concat());
    let m = json(&out);
    assert_eq!(m["spreads"], true);
    assert_eq!(m["trades"], 2);
    // The long buys at 1.3501 and sells at 0.9999 (-3,502), the short sells at 0.9999 and buys back at the
    // ask of the last close, 0.9901 (+98).
    assert!(close(f(&m, "net_pips"), -3404.0), "{}", m["net_pips"]);
    assert!(close(f(&m, "net_profit"), -3404.0));
    // The bid candles make the same crosses; the ask is rebuilt as bid + spread, so the fills are the same.
    let out = cli(dir.path(), &[&args[..], &["--strategy", "sma-cross", "--json", "--price", "bid"]].concat());
    assert!(close(f(&json(&out), "net_pips"), -3404.0));
}

#[test]
fn the_readable_report_names_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let candles = write(dir.path(), "hand.csv", &hand_series(None));
    let out = cli(
        dir.path(),
        &[
            "--candles",
            candles.to_str().unwrap(),
            "--symbol",
            "eur/usd",
            "--timeframe",
            "H1",
            "--strategy",
            "sma-cross",
        ],
    );
    let text = stdout(&out);
    for want in
        ["sma-cross on EURUSD 1h (56 bars", "trades          2", "win rate        50.0%", "net pips        -3400"]
    {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert!(text.contains("max drawdown    35000"), "{text}");
}

#[test]
fn bundled_eurusd_sma_cross() {
    let dir = tempfile::tempdir().unwrap();
    let candles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz");
    let out = cli(
        dir.path(),
        &[
            "--candles",
            candles.to_str().unwrap(),
            "--symbol",
            "EURUSD",
            "--timeframe",
            "1h",
            "--strategy",
            "sma-cross",
            "--json",
        ],
    );
    let m = json(&out);
    assert_eq!(m["bars"], 74_439);
    // SMA(10)/SMA(30) crosses of the exact decimal mids, counted in rational arithmetic by
    // scripts/compare_backtesting_py.py: 2,833 (the last position is closed at the end and counted).
    assert_eq!(m["trades"], 2_833);
    assert_eq!(m["closed_at_end"], 1);
    assert_eq!(m["spreads"], true);
    let win_rate = f(&m, "win_rate");
    assert!((0.2..0.5).contains(&win_rate), "{win_rate}");
    assert!(f(&m, "sharpe").is_finite());
    assert!(f(&m, "max_drawdown") > 0.0);
}

#[test]
fn reversal_is_the_default_strategy_and_trades_with_stops() {
    let dir = tempfile::tempdir().unwrap();
    let candles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz");
    let out =
        cli(dir.path(), &["--candles", candles.to_str().unwrap(), "--symbol", "EURUSD", "--timeframe", "1h", "--json"]);
    let m = json(&out);
    assert_eq!(m["strategy"], "reversal");
    assert_eq!(m["bars"], 74_439);
    assert!(f(&m, "trades") > 0.0);
    // Every reversal trade has a stop loss and a take profit, so both R figures exist.
    assert!(f(&m, "avg_planned_rr") > 0.0);
    assert!(f(&m, "avg_rr").is_finite());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "hand.csv", &hand_series(None));
    let good = good.to_str().unwrap();
    let run = |args: &[&str]| stderr(&cli(dir.path(), &[&["--strategy", "sma-cross"], args].concat()));

    let err = run(&["--candles", good, "--symbol", "EURUDS", "--timeframe", "1h"]);
    assert!(err.contains("unknown instrument") && err.contains("did you mean EURUSD"), "{err}");

    let err = run(&["--candles", good, "--symbol", "EURUSD", "--timeframe", "2h"]);
    assert!(err.contains("unknown timeframe \"2h\""), "{err}");

    let err = run(&["--candles", good, "--symbol", "EURUSD", "--timeframe", "4h"]);
    assert!(err.contains("holds 1h candles, not 4h"), "{err}");

    let broken = write(
        dir.path(),
        "broken.csv",
        "time,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n2024-01-01T01:00:00Z,1,1,1,abc\n",
    );
    let err = run(&["--candles", broken.to_str().unwrap(), "--symbol", "EURUSD", "--timeframe", "1h"]);
    assert!(err.contains("broken.csv line 3: close \"abc\" is not a number"), "{err}");

    let missing = dir.path().join("nowhere.csv");
    let err = run(&["--candles", missing.to_str().unwrap(), "--symbol", "EURUSD", "--timeframe", "1h"]);
    assert!(err.contains("nowhere.csv") && err.contains("cannot open"), "{err}");

    let err = run(&["--candles", good, "--symbol", "EURUSD", "--timeframe", "1h", "--lots", "0.001"]);
    assert!(err.contains("--lots") && err.contains("between 0.01 and 100"), "{err}");

    let err =
        stderr(&cli(dir.path(), &["--candles", good, "--symbol", "EURUSD", "--timeframe", "1h", "--strategy", "nope"]));
    assert!(err.contains("sma-cross") && err.contains("reversal"), "the choices are listed: {err}");
}
