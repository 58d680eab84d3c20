//! A small WebDriver client for headless Chromium through `chromedriver`, for the browser test
//! and the browser latency example.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memtail_suite::process::Process;
use memtail_suite::{need_program, Missing};
use serde_json::{json, Value};

/// How long the driver may take to answer at start.
const START_DEADLINE: Duration = Duration::from_secs(30);

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,700",
];

/// The browser and its driver (on the PATH, or named by `MEMTAIL_CHROMIUM` and
/// `MEMTAIL_CHROMEDRIVER`), or what is missing.
pub fn browser() -> Result<(PathBuf, PathBuf), Missing> {
    let install = "apt-get install chromium chromium-driver";
    let require = "MEMTAIL_REQUIRE_CHROMIUM";
    let chromium = need_program("chromium", "MEMTAIL_CHROMIUM", install, require)?;
    let driver = need_program("chromedriver", "MEMTAIL_CHROMEDRIVER", install, require)?;
    Ok((chromium, driver))
}

/// A WebDriver session on a chromedriver of its own; the driver and its browser are killed when
/// this is dropped.
pub struct Driver {
    process: Process,
    url: String,
    session: String,
    client: reqwest::Client,
    _profile: TempDir,
}

impl Driver {
    pub async fn start(chromium: &PathBuf, chromedriver: &PathBuf) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Process::spawn(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // Bounded poll until the driver answers.
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match client.get(format!("{url}/status")).send().await {
                Ok(response) if response.status().is_success() => break,
                _ if Instant::now() > deadline => panic!("chromedriver never answered"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let profile = TempDir::new("chromium-profile");
        let mut args: Vec<String> = FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.0.display()));
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": chromium, "args": args },
            }}
        });
        let created = post(&client, &format!("{url}/session"), &capabilities).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {created}"))
            .to_owned();
        Driver {
            process,
            url,
            session,
            client,
            _profile: profile,
        }
    }

    pub async fn go(&self, page: &str) {
        self.command("url", &json!({ "url": page })).await;
    }

    pub async fn run(&self, script: &str) -> Value {
        self.command("execute/sync", &json!({ "script": script, "args": [] }))
            .await["value"]
            .take()
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        let response = self
            .client
            .get(format!("{}/session/{}/screenshot", self.url, self.session))
            .send()
            .await
            .unwrap();
        let value: Value = response.json_value().await;
        decode_base64(value["value"].as_str().expect("a screenshot"))
    }

    async fn command(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.url, self.session);
        post(&self.client, &url, body).await
    }

    /// Ends the session; the driver and the browser are killed when `self` drops here.
    pub async fn quit(self) {
        let url = format!("{}/session/{}", self.url, self.session);
        let _ = self.client.delete(url).send().await;
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let value = response.json_value().await;
    assert!(status.is_success(), "{url}: {status} {value}");
    value
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(chunk.len() - 1)
        })
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("memtail-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
