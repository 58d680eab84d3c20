//! From a line appended to a file to the line on screen in a browser: what `memtail serve FILE`
//! does, measured in headless Chromium.
//!
//! Run it with `cargo run --release --example browser_latency --features follow,http` (it needs
//! Debian's `chromium` and `chromium-driver`); `-- --poll` follows the file by polling every 50 ms
//! instead of by kernel notifications. A writer appends 100 lines a second for 5 s to a
//! temporary file, each stamped with the wall-clock time; `memtail::follow` follows the file into
//! a `LogBuffer` served by `memtail::http`; the viewer page is open in the browser, where a
//! `MutationObserver` records when each line was added to the page. Latency is that time minus the
//! stamp (one clock: browser and writer run on the same machine).

#[path = "../tests/common/webdriver.rs"]
mod webdriver;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt;
use memtail::follow::Follow;
use memtail::LogBuffer;

const RATE: u64 = 100;
const SECONDS: u64 = 5;

const OBSERVE: &str = r#"
    window.__seen = [];
    new MutationObserver((mutations) => {
        const now = performance.timeOrigin + performance.now();
        for (const m of mutations) for (const node of m.addedNodes) {
            // Lines go into chunks of 100: a new chunk arrives with its first lines in it.
            const lines = !node.classList ? [] : node.classList.contains("line") ? [node]
                : node.querySelectorAll ? node.querySelectorAll(".line") : [];
            for (const line of lines) window.__seen.push([now, line.textContent]);
        }
    }).observe(document.getElementById("log"), { childList: true, subtree: true });
    return null;
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (chromium, chromedriver) = webdriver::browser().unwrap_or_else(|missing| {
        eprintln!("browser_latency: {}", missing.reason);
        std::process::exit(2)
    });
    let dir = std::env::temp_dir().join(format!("memtail-browser-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let buf = LogBuffer::with_capacity(1 << 20);
    let poll = std::env::args().any(|arg| arg == "--poll");
    let follower = Follow::new().polling(poll).file(&path, &buf);
    follower.wait_ready(Duration::from_secs(10));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = memtail::http::router(buf.clone());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let driver = webdriver::Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    driver.run(OBSERVE).await;
    while buf.stats().followers == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let lines = RATE * SECONDS;
    let writer = std::thread::spawn(move || {
        let start = Instant::now();
        for n in 0..lines {
            let due = start + Duration::from_nanos(n * 1_000_000_000 / RATE);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let micros = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_micros();
            writeln!(file, "t={micros} line {n}").unwrap();
        }
    });
    writer.join().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = driver.run("return window.__seen;").await;
        let count = seen.as_array().map_or(0, Vec::len) as u64;
        if count >= lines || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    driver.quit().await;
    drop(follower);
    let _ = std::fs::remove_dir_all(&dir);

    let mut latencies: Vec<f64> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|pair| {
            let shown_ms = pair[0].as_f64()?;
            let text = pair[1].as_str()?;
            let micros: f64 = text.strip_prefix("t=")?.split(' ').next()?.parse().ok()?;
            Some(shown_ms - micros / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{} of {lines} lines shown; file append to browser DOM: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
