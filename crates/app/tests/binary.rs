//! The `signalpost` binary as a user runs it: `serve` in its own process, `trades` and `migrate` against the
//! same database, SIGTERM for a graceful stop and SIGKILL for a crash.
//!
//! A separate process cannot be awaited on a channel, so these tests poll its HTTP endpoints until a
//! condition holds or a deadline passes; nothing waits a fixed time and hopes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_signalpost");

/// Variables that must not leak from the developer's or CI's environment into the child.
const CLEARED: &[&str] =
    &["DATABASE_URL", "SIGNALPOST_BIND", "SIGNALPOST_REPLAY_SERIES", "SIGNALPOST_CONFIG", "SIGNALPOST_FEED"];

fn command(dir: &std::path::Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for var in CLEARED {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn cli(dir: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Output {
    command(dir, env).args(args).output().expect("the binary runs")
}

struct Serve {
    child: Child,
    address: String,
}

impl Serve {
    fn start(dir: &std::path::Path, env: &[(&str, String)]) -> Serve {
        let mut child = command(dir, env)
            .arg("serve")
            .env("SIGNALPOST_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("serve prints its address");
        let address = line
            .trim()
            .strip_prefix("signalpost listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Serve { child, address }
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = http_get::blocking_get(&format!("{}{}", self.address, path))?;
        Some(response)
    }

    /// Polls `path` until `check` accepts its body, for at most `within`.
    fn wait_until(&self, path: &str, within: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some((200, body)) = self.get(path)
                && check(&body)
            {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never satisfied the condition");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking HTTP GET over std, so these tests need no second runtime.
mod http_get {
    use std::io::{Read, Write};
    pub fn blocking_get(url: &str) -> Option<(u16, String)> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut stream = std::net::TcpStream::connect(host).ok()?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }
}

fn candles(dir: &std::path::Path, name: &str, rows: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("time,open,high,low,close\n{}\n", rows.join("\n"))).unwrap();
    path.display().to_string()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn database(dir: &std::path::Path) -> (String, Option<testkit::db::DbGuard>) {
    if std::env::var(testkit::db::TEST_DATABASE_URL).is_ok() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (url, guard) = runtime.block_on(testkit::db::fresh_database_url());
        (url, Some(guard))
    } else {
        (format!("sqlite://{}", dir.join("signalpost.db").display()), None)
    }
}

#[test]
fn the_default_run_answers_healthz_and_replays_bundled_data_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[]);
    let (status, body) = serve.get("/healthz").expect("healthz answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sqlite"), "{body}");
    serve.wait_until("/metrics", Duration::from_secs(30), |m| {
        m.lines().any(|l| l.starts_with("signalpost_ticks_total ") && !l.ends_with(" 0"))
    });
    assert!(
        dir.path().join("signalpost.db").exists(),
        "the embedded default is a SQLite file in the working directory"
    );
    assert!(serve.terminate().success(), "a graceful stop exits 0");
}

#[test]
fn a_killed_serve_keeps_the_open_trade_and_still_closes_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = database(dir.path());
    let quiet = candles(
        dir.path(),
        "quiet.csv",
        &["2024-01-01 00:00:00,1.0850,1.0860,1.0830,1.0855", "2024-01-01 01:00:00,1.0855,1.0880,1.0840,1.0860"],
    );
    let rising = candles(
        dir.path(),
        "rising.csv",
        &["2024-01-01 02:00:00,1.0860,1.0900,1.0850,1.0890", "2024-01-01 03:00:00,1.0890,1.0975,1.0880,1.0960"],
    );
    let env = |series: &str| {
        vec![
            ("DATABASE_URL", url.clone()),
            ("SIGNALPOST_REPLAY_SERIES", format!("EURUSD:1h:{series}")),
            ("SIGNALPOST_REPLAY_SPEED", "0".into()),
        ]
    };

    stdout(&cli(dir.path(), &env(&quiet), &["migrate"]));
    let first = Serve::start(dir.path(), &env(&quiet));
    first.wait_until("/metrics", Duration::from_secs(30), |m| m.lines().any(|l| l == "signalpost_replay_finished 1"));

    // Bad input changes nothing.
    let wrong_side = cli(
        dir.path(),
        &env(&quiet),
        &["trades", "open", "EURUSD", "long", "--lots", "0.5", "--sl", "1.0900", "--tp", "1.0962"],
    );
    assert!(!wrong_side.status.success());
    assert!(
        String::from_utf8_lossy(&wrong_side.stderr).contains("stop loss must be below"),
        "{}",
        String::from_utf8_lossy(&wrong_side.stderr)
    );
    let unknown = cli(dir.path(), &env(&quiet), &["trades", "open", "EURUDS", "long", "--sl", "1.08", "--tp", "1.09"]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("did you mean EURUSD"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let too_big = cli(
        dir.path(),
        &env(&quiet),
        &["trades", "open", "EURUSD", "long", "--lots", "101", "--sl", "1.08", "--tp", "1.09"],
    );
    assert!(String::from_utf8_lossy(&too_big.stderr).contains("lots must be between 0.01 and 100"));
    assert_eq!(stdout(&cli(dir.path(), &env(&quiet), &["trades", "list"])), "", "nothing was stored");

    // Opened at market: the latest price the running server recorded (the quiet replay's last close).
    let opened = stdout(&cli(
        dir.path(),
        &env(&quiet),
        &["trades", "open", "EURUSD", "long", "--lots", "0.5", "--sl", "1.0800", "--tp", "1.0962", "--json"],
    ));
    let trade: serde_json::Value = serde_json::from_str(opened.trim()).unwrap();
    assert_eq!(trade["entry"], "1.086");
    let id = trade["id"].as_i64().unwrap().to_string();
    first.kill();

    let second = Serve::start(dir.path(), &env(&rising));
    second.wait_until("/metrics", Duration::from_secs(30), |m| m.lines().any(|l| l == "signalpost_replay_finished 1"));
    let closed: serde_json::Value = serde_json::from_str(
        stdout(&cli(dir.path(), &env(&rising), &["trades", "show", &id, "--json"])).lines().next().unwrap(),
    )
    .unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["close_reason"], "tp_hit");
    assert_eq!(closed["exit_price"], "1.0962");
    assert_eq!(closed["pips"], "102");
    assert_eq!(closed["profit"], "510");
    assert!(second.terminate().success());

    // A third run over the same market finds nothing left to close.
    let third = Serve::start(dir.path(), &env(&rising));
    third.wait_until("/metrics", Duration::from_secs(30), |m| m.lines().any(|l| l == "signalpost_replay_finished 1"));
    let history = stdout(&cli(dir.path(), &env(&rising), &["trades", "show", &id, "--json"]));
    assert_eq!(history.matches("\"kind\":\"closed\"").count(), 1, "{history}");
    third.kill();
}
