//! `signalpost parse` as a user runs it: the real binary on a message piped to stdin, and on a JSONL file
//! with a malformed line in the middle.

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_signalpost");

fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for var in ["SIGNALPOST_CONFIG", "SIGNALPOST_ACCOUNT_CURRENCY", "SIGNALPOST_MODEL", "RUST_BACKTRACE"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").arg("parse");
    cmd
}

fn with_stdin(dir: &std::path::Path, input: &str) -> Output {
    let mut child = command(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("the binary finishes")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn stdin_is_one_message_even_across_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_stdin(dir.path(), "Usdcad buy now 1.3641\nSl: 1.3530\nTp: 1.3850\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        lines(&out),
        vec![json!({
            "kind": "open", "symbol": "USDCAD", "side": "long", "entry": 1.3641, "stop_loss": 1.353,
            "take_profits": [1.385], "leverage": null
        })]
    );
}

#[test]
fn jsonl_prints_one_object_per_line_and_names_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.jsonl");
    let body = [
        json!({"text": "BTC/USDT LONG Entry: 42000-42500 TP1 43000 TP2 44000 SL 41000 Leverage 10x"}).to_string(),
        "{\"text\": oops".to_string(),
        String::new(),
        json!({"text": "Hit like if you made money this week 👍", "source": "extra fields are fine"}).to_string(),
    ]
    .join("\n");
    std::fs::write(&file, body).unwrap();
    let out = command(dir.path()).arg("--jsonl").arg(&file).output().expect("the binary runs");
    assert!(!out.status.success(), "a malformed line makes the command fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("messages.jsonl:2:"), "names the line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let got = lines(&out);
    assert_eq!(got.len(), 2, "the good lines are still parsed");
    assert_eq!(got[0]["kind"], "open");
    assert_eq!(got[0]["entry"], json!([42000, 42500]));
    assert_eq!(got[0]["leverage"], 10);
    assert_eq!(
        got[1],
        json!({
            "kind": "noise", "symbol": null, "side": null, "entry": null, "stop_loss": null,
            "take_profits": [], "leverage": null
        })
    );
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).args(["--jsonl", "nope.jsonl"]).output().expect("the binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.jsonl") && !stderr.contains("panicked"), "{stderr}");
}
