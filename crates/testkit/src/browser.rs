//! Browser tests in headless Chromium through chromedriver (Debian's `chromium` and `chromium-driver`),
//! driven with fantoccini.
//!
//! [`run`] starts chromedriver on a free port, opens a headless session, runs the test body with the
//! client, and when the body panics saves a screenshot to `target/browser-failures/<test>.png` before
//! letting the panic go on. Without chromedriver the test is skipped with a line on stderr, except under
//! CI (`CI` set), where a missing browser is a failure: CI must run these tests.
//!
//! ```no_run
//! # async fn demo() {
//! testkit::browser::run("sign_in", |browser| async move {
//!     browser.goto("http://127.0.0.1:8080/login").await.unwrap();
//! })
//! .await;
//! # }
//! ```

use fantoccini::{Client, ClientBuilder};
use futures::FutureExt;
use serde_json::json;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where chromedriver is looked for, after `$CHROMEDRIVER`.
const DRIVERS: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
/// The browser binary, when Debian's is installed (chromedriver finds it itself otherwise).
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];

fn find_driver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER").map(PathBuf::from) {
        return path.exists().then_some(path);
    }
    DRIVERS.iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|d| d.join("chromedriver")).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.exists())
    })
}

/// The directory failure screenshots go to: `$CARGO_TARGET_DIR/browser-failures` or the workspace's
/// `target/browser-failures`.
pub fn failure_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-failures")
}

/// A chromedriver process, killed when dropped.
#[derive(Debug)]
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(path: &Path) -> Driver {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port for chromedriver");
        listener.local_addr().expect("a local address").port()
    };
    let mut child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", path.display()));
    // chromedriver prints this line once it listens; reading it is the readiness signal, not a sleep.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| line.contains("started successfully"));
    assert!(ready, "chromedriver exited before it was ready");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Driver { child, port }
}

async fn connect(driver: &Driver) -> Client {
    let mut options = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1024"],
    });
    if let Some(binary) = CHROMIUM.iter().find(|p| Path::new(p).exists()) {
        options["binary"] = json!(binary);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    let url = format!("http://127.0.0.1:{}", driver.port);
    let mut builder = ClientBuilder::native();
    builder.capabilities(capabilities);
    let connecting = builder.connect(&url);
    tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("chromedriver opened no session within 60 s")
        .expect("chromedriver opens a headless Chromium session")
}

/// Runs `body` against a fresh headless Chromium; see the module docs. `test` names the screenshot.
pub async fn run<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(path) = find_driver() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromedriver not found, and CI must run the browser tests: install chromium and chromium-driver");
        }
        eprintln!("skipped: chromedriver not found ({test}); install chromium and chromium-driver to run it");
        return;
    };
    let driver = start_driver(&path);
    let client = connect(&driver).await;
    let outcome = AssertUnwindSafe(body(client.clone())).catch_unwind().await;
    if outcome.is_err() {
        let dir = failure_dir();
        let file = dir.join(format!("{test}.png"));
        match client.screenshot().await {
            Ok(png) => match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, png)) {
                Ok(()) => eprintln!("browser test {test} failed; screenshot: {}", file.display()),
                Err(e) => eprintln!("browser test {test} failed; could not save its screenshot: {e}"),
            },
            Err(e) => eprintln!("browser test {test} failed; could not take a screenshot: {e}"),
        }
    }
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
