//! The viewer page in a real browser: Debian's headless Chromium, driven over WebDriver by
//! `chromedriver`.
//!
//! `.ci/run` installs `chromium` and `chromium-driver` and sets `MEMTAIL_REQUIRE_CHROMIUM=1`, so
//! that there a missing browser fails the test. Elsewhere the test says loudly that it skipped.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use common::{serve, DEADLINE};
use memtail::LogBuffer;
use serde_json::{json, Value};

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

fn find(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(path.into());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The browser and its driver, or `None` (after saying so) when this machine has none.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find("chromium", "MEMTAIL_CHROMIUM");
    let driver = find("chromedriver", "MEMTAIL_CHROMEDRIVER");
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if std::env::var_os("MEMTAIL_REQUIRE_CHROMIUM").is_some() => {
            panic!("MEMTAIL_REQUIRE_CHROMIUM is set but chromium or chromedriver is missing")
        }
        _ => {
            eprintln!(
                "\n\n*** SKIPPED: the browser test needs chromium and chromedriver \
                 (apt-get install -y chromium chromium-driver) ***\n\n"
            );
            None
        }
    }
}

/// A WebDriver session on a chromedriver of its own.
struct Driver {
    process: tokio::process::Child,
    url: String,
    session: String,
    client: reqwest::Client,
    _profile: TempDir,
}

impl Driver {
    async fn start(chromium: &PathBuf, chromedriver: &PathBuf) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // Bounded poll until the driver answers.
        let deadline = Instant::now() + DEADLINE;
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

    async fn go(&self, page: &str) {
        self.command("url", &json!({ "url": page })).await;
    }

    async fn run(&self, script: &str) -> Value {
        self.command("execute/sync", &json!({ "script": script, "args": [] }))
            .await["value"]
            .take()
    }

    async fn screenshot(&self) -> Vec<u8> {
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

    async fn quit(mut self) {
        let url = format!("{}/session/{}", self.url, self.session);
        let _ = self.client.delete(url).send().await;
        let _ = self.process.kill().await;
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

/// The lines the page shows: `[seq, text]` pairs, in page order, and how many `<img>` elements
/// the log area holds.
const READ_PAGE: &str = r#"
    const log = document.getElementById("log");
    return {
        lines: Array.from(log.querySelectorAll(".line")).map((el) => [Number(el.dataset.seq), el.textContent]),
        notices: Array.from(log.querySelectorAll(".notice")).map((el) => el.textContent),
        images: log.querySelectorAll("img").length,
        coloured: Array.from(log.querySelectorAll("span")).filter((el) => el.style.color !== "").map((el) => [el.textContent, el.style.color]),
        alerted: window.__alerted === true,
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_shows_backlog_then_live_entries_as_text() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let buf = LogBuffer::with_capacity(1 << 20);
    let backlog = [
        "first line\n",
        "<img src=x onerror=alert(1)>\n",
        "\x1b[31mred alert\x1b[0m and plain\n",
        "multi\nline\n",
        "\x1b]0;retitled\x07osc gone, bell \x07 shown\n",
    ];
    for line in backlog {
        buf.append(line.as_bytes());
    }
    let address = serve(memtail::http::router(buf.clone())).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    // Catch an alert() if the page ever ran log text as markup.
    driver.go(&format!("http://{address}/")).await;
    driver
        .run("window.alert = () => { window.__alerted = true; }; return null;")
        .await;

    // Live entries, once the page follows.
    let deadline = Instant::now() + DEADLINE;
    while buf.stats().subscribers == 0 {
        assert!(Instant::now() < deadline, "the page never followed /events");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for n in 0..20 {
        writeln!(&buf, "live {n}").unwrap();
    }
    let total = backlog.len() + 20;

    let deadline = Instant::now() + DEADLINE;
    let page = loop {
        let page = driver.run(READ_PAGE).await;
        if page["lines"].as_array().map_or(0, Vec::len) >= total {
            break page;
        }
        assert!(Instant::now() < deadline, "the page showed {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    let lines: Vec<(u64, String)> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_u64().unwrap(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (0..total as u64).collect::<Vec<_>>(),
        "in order, once each"
    );
    let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts[0], "first line");
    assert_eq!(texts[1], "<img src=x onerror=alert(1)>", "shown as text");
    assert_eq!(texts[2], "red alert and plain", "no raw escape characters");
    assert_eq!(texts[3], "multi\nline");
    assert_eq!(texts[4], "osc gone, bell \u{2407} shown");
    assert_eq!(texts[5], "live 0");
    assert_eq!(texts[total - 1], "live 19");
    assert_eq!(page["images"], 0, "no element was made from log text");
    assert_eq!(page["alerted"], false);
    assert_eq!(page["notices"].as_array().unwrap().len(), 0);
    let coloured = &page["coloured"][0];
    assert_eq!(coloured[0], "red alert");
    assert_eq!(coloured[1], "rgb(191, 97, 106)");

    // MEMTAIL_SCREENSHOT=path keeps a picture of the page (how README's screenshot was made).
    if let Some(path) = std::env::var_os("MEMTAIL_SCREENSHOT") {
        std::fs::write(path, driver.screenshot().await).unwrap();
    }
    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_says_how_many_entries_were_missed() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    // A queue of one entry: a burst written while the page follows overflows it.
    let buf = LogBuffer::with_capacity(1 << 20);
    let address = serve(
        memtail::http::Config::new()
            .follower_queue(1)
            .router(buf.clone()),
    )
    .await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    let deadline = Instant::now() + DEADLINE;
    while buf.stats().subscribers == 0 {
        assert!(Instant::now() < deadline, "the page never followed /events");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    const BURST: u64 = 2000;
    for n in 0..BURST {
        writeln!(&buf, "burst {n}").unwrap();
    }
    let dropped = buf.stats().subscriber_drops;
    assert!(dropped > 0, "the burst overflowed the queue");

    let read = r#"
        const log = document.getElementById("log");
        return {
            lines: log.querySelectorAll(".line").length,
            notices: Array.from(log.querySelectorAll(".notice")).map((el) => el.textContent),
        };
    "#;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let page = driver.run(read).await;
        let lines = page["lines"].as_u64().unwrap();
        let missed: u64 = page["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|notice| {
                let text = notice.as_str().unwrap();
                assert!(text.ends_with(" missed"), "{text}");
                text.split(' ').next().unwrap().parse::<u64>().unwrap()
            })
            .sum();
        if lines + missed >= BURST {
            assert_eq!(lines + missed, BURST, "every entry shown or counted");
            assert_eq!(missed, dropped);
            break;
        }
        assert!(Instant::now() < deadline, "the page showed {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    driver.quit().await;
}
