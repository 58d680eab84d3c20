//! The viewer page in a real browser: Debian's headless Chromium, driven over WebDriver by
//! `chromedriver`.
//!
//! Without `chromium` and `chromedriver` on the PATH the tests are reported as ignored, with the
//! reason. `.ci/run` installs Debian's `chromium` and `chromium-driver` and sets
//! `MEMTAIL_REQUIRE_CHROMIUM=1`, so that there a missing browser fails the tests.

mod common;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use common::webdriver::{browser, Driver};
use common::{serve, DEADLINE};
use memtail::LogBuffer;
use memtail_suite::system_test;

fn main() {
    memtail_suite::run(vec![
        system_test(
            "the_viewer_keeps_up_with_a_large_backlog_and_a_burst",
            browser,
            |(chromium, chromedriver)| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(the_viewer_keeps_up_with_a_large_backlog_and_a_burst(
                        chromium,
                        chromedriver,
                    ));
            },
        ),
        system_test(
            "the_viewer_says_the_log_started_over_when_the_server_restarts",
            browser,
            |(chromium, chromedriver)| {
                on_one_thread(
                    the_viewer_says_the_log_started_over_when_the_server_restarts(
                        chromium,
                        chromedriver,
                    ),
                );
            },
        ),
        system_test(
            "the_viewer_shows_backlog_then_live_entries_as_text",
            browser,
            |(chromium, chromedriver)| {
                // The server on two workers, the test on this thread.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(the_viewer_shows_backlog_then_live_entries_as_text(
                    chromium,
                    chromedriver,
                ));
            },
        ),
        system_test(
            "the_viewer_says_how_many_entries_were_missed",
            browser,
            |(chromium, chromedriver)| {
                // One thread: while the test writes its burst, the server cannot run, so the
                // page's stream finds the entries it had not sent evicted from the small ring.
                on_one_thread(the_viewer_says_how_many_entries_were_missed(
                    chromium,
                    chromedriver,
                ));
            },
        ),
    ]);
}

/// A server with a runtime of its own, like a process: stopping it closes every connection.
struct ServerProcess {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Serves `buf` on `port` of 127.0.0.1 (0: any), and the address.
    fn start(buf: LogBuffer, port: u16) -> (ServerProcess, std::net::SocketAddr) {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                // The port of the process before: its closed connections may linger.
                socket.set_reuseaddr(true).unwrap();
                socket
                    .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                    .unwrap();
                let listener = socket.listen(64).unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                tokio::spawn(memtail::http::Config::new().serve(buf, listener));
            });
            let _ = stopped.recv();
            // Dropping the runtime drops every connection.
            drop(runtime);
        });
        let address = address.recv().unwrap();
        let process = ServerProcess {
            stop: Some(stop),
            thread: Some(thread),
        };
        (process, address)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the page shows: the texts of its lines and its notices.
async fn shown(driver: &Driver) -> (Vec<String>, Vec<String>) {
    let page = driver
        .run(
            r#"const log = document.getElementById("log");
            return {
                lines: Array.from(log.querySelectorAll(".line")).map((el) => el.textContent),
                notices: Array.from(log.querySelectorAll(".notice")).map((el) => el.textContent),
            };"#,
        )
        .await;
    let texts = |key: &str| -> Vec<String> {
        page[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|text| text.as_str().unwrap().to_owned())
            .collect()
    };
    (texts("lines"), texts("notices"))
}

/// Waits (bounded) until the page shows what `done` wants.
async fn until_shown(driver: &Driver, done: impl Fn(&[String], &[String]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (lines, notices) = shown(driver).await;
        if done(&lines, &notices) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page showed {lines:?} and {notices:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The server restarts twice on the same port, with fewer entries, then more: each time the
/// page says the log started over and shows every entry of the new log.
async fn the_viewer_says_the_log_started_over_when_the_server_restarts(
    chromium: PathBuf,
    chromedriver: PathBuf,
) {
    let log = |name: &str, entries: usize| {
        let buf = LogBuffer::new();
        for n in 1..=entries {
            writeln!(&buf, "{name}-{n}").unwrap();
        }
        buf
    };
    let (first, address) = ServerProcess::start(log("first", 20), 0);
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    until_shown(&driver, |lines, _| lines.len() == 20).await;
    drop(first);
    let mut expected: Vec<String> = (1..=20).map(|n| format!("first-{n}")).collect();
    for (restarts, (name, entries)) in [("second", 5), ("third", 20)].into_iter().enumerate() {
        let (server, _) = ServerProcess::start(log(name, entries), address.port());
        expected.extend((1..=entries).map(|n| format!("{name}-{n}")));
        until_shown(&driver, |lines, notices| {
            lines.len() >= expected.len() && notices.len() > restarts
        })
        .await;
        let (lines, notices) = shown(&driver).await;
        assert_eq!(lines, expected, "every entry of every log, once");
        assert_eq!(notices, vec!["the log started over"; restarts + 1]);
        drop(server);
    }
    driver.quit().await;
}

/// The page's counts: entries received and entries announced missed.
async fn counts(driver: &Driver) -> (u64, u64) {
    let counts = driver
        .run(
            r#"const c = document.getElementById("counts").dataset;
            return [Number(c.received || 0), Number(c.missed || 0)];"#,
        )
        .await;
    (counts[0].as_u64().unwrap(), counts[1].as_u64().unwrap())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// 20 000 lines of backlog, then 20 000 lines a second for 5 s: the page takes them all (shown or
/// counted missed), shows the newest, keeps at most 10 000 rows, and answers script calls
/// throughout (their round trips are printed: the goals are 1 s for the backlog and 100 ms at
/// p99; timings are not asserted).
async fn the_viewer_keeps_up_with_a_large_backlog_and_a_burst(
    chromium: PathBuf,
    chromedriver: PathBuf,
) {
    const BACKLOG: u64 = 20_000;
    const RATE: u64 = 20_000;
    const SECONDS: u64 = 5;
    let buf = LogBuffer::with_capacity(16 << 20);
    for n in 0..BACKLOG {
        writeln!(
            &buf,
            "backlog line {n} with some text to make it look like a log line"
        )
        .unwrap();
    }
    let address = serve(memtail::http::router(buf.clone())).await;
    let driver = Driver::start(&chromium, &chromedriver).await;

    let mut round_trips = Vec::new();
    let navigated = Instant::now();
    driver.go(&format!("http://{address}/")).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let asked = Instant::now();
        let newest = driver
            .run(
                r##"const rows = document.querySelectorAll("#log .line");
                return rows.length === 0 ? "" : rows[rows.length - 1].textContent;"##,
            )
            .await;
        round_trips.push(asked.elapsed().as_secs_f64() * 1000.0);
        if newest
            .as_str()
            .is_some_and(|text| text.starts_with(&format!("backlog line {}", BACKLOG - 1)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog was never shown: {newest}"
        );
    }
    let backlog_shown = navigated.elapsed();
    round_trips.sort_by(f64::total_cmp);
    let backlog_max = round_trips.last().copied().unwrap_or(0.0);

    // The burst, paced by a thread of its own.
    let writer = {
        let buf = buf.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            for n in 0..RATE * SECONDS {
                if n % (RATE / 1000) == 0 {
                    let due = std::time::Duration::from_micros(n * 1_000_000 / RATE);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                writeln!(
                    &buf,
                    "burst line {n} with some text to make it look like a log line"
                )
                .unwrap();
            }
        })
    };
    let mut burst_trips = Vec::new();
    while !writer.is_finished() {
        let asked = Instant::now();
        driver.run("return performance.now();").await;
        burst_trips.push(asked.elapsed().as_secs_f64() * 1000.0);
    }
    writer.join().unwrap();
    let written = BACKLOG + RATE * SECONDS;
    let deadline = Instant::now() + DEADLINE;
    let (received, missed) = loop {
        let (received, missed) = counts(&driver).await;
        if received + missed >= written {
            break (received, missed);
        }
        assert!(
            Instant::now() < deadline,
            "{received} received + {missed} missed of {written}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(received + missed, written, "every entry shown or counted");
    let page = driver
        .run(
            r##"const rows = document.querySelectorAll("#log .line, #log .notice");
            return [rows.length, rows[rows.length - 1].textContent];"##,
        )
        .await;
    assert!(page[0].as_u64().unwrap() <= 10_000, "bounded rows: {page}");
    assert_eq!(
        page[1],
        format!(
            "burst line {} with some text to make it look like a log line",
            RATE * SECONDS - 1
        ),
        "the newest line is shown"
    );
    burst_trips.sort_by(f64::total_cmp);
    eprintln!(
        "viewer: {BACKLOG}-line backlog shown in {backlog_shown:?} (script round trips up to \
         {backlog_max:.1} ms meanwhile); {RATE}/s for {SECONDS} s: {received} received, {missed} \
         missed; round trips p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} calls",
        quantile(&burst_trips, 0.5),
        quantile(&burst_trips, 0.99),
        burst_trips.last().unwrap(),
        burst_trips.len()
    );
    driver.quit().await;
}

fn on_one_thread(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
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

async fn the_viewer_shows_backlog_then_live_entries_as_text(
    chromium: PathBuf,
    chromedriver: PathBuf,
) {
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
    while buf.stats().followers == 0 {
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

async fn the_viewer_says_how_many_entries_were_missed(chromium: PathBuf, chromedriver: PathBuf) {
    let buf = LogBuffer::with_capacity(4096);
    let address = serve(memtail::http::router(buf.clone())).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    let deadline = Instant::now() + DEADLINE;
    while buf.stats().followers == 0 {
        assert!(Instant::now() < deadline, "the page never followed /events");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    const BURST: u64 = 2000;
    for n in 0..BURST {
        writeln!(&buf, "burst {n}").unwrap();
    }
    let stats = buf.stats();
    assert!(stats.entries_evicted > 0, "the burst overflowed the ring");

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
            assert_eq!(missed, buf.stats().follower_missed);
            assert_eq!(missed, BURST - stats.retained_entries);
            break;
        }
        assert!(Instant::now() < deadline, "the page showed {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    driver.quit().await;
}
