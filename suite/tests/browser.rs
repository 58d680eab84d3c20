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
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    memtail_suite::run(vec![
        system_test(
            "the_viewer_shows_times_and_filters_by_target",
            browser,
            |(chromium, chromedriver)| {
                on_two_threads(the_viewer_shows_times_and_filters_by_target(
                    chromium,
                    chromedriver,
                ));
            },
        ),
        system_test(
            "the_viewer_filters_searches_pauses_downloads_and_links",
            browser,
            |(chromium, chromedriver)| {
                on_two_threads(the_viewer_filters_searches_pauses_downloads_and_links(
                    chromium,
                    chromedriver,
                ));
            },
        ),
        system_test(
            "the_viewer_keeps_its_view_in_the_url_and_names_what_it_serves",
            browser,
            |(chromium, chromedriver)| {
                on_two_threads(
                    the_viewer_keeps_its_view_in_the_url_and_names_what_it_serves(
                        chromium,
                        chromedriver,
                    ),
                );
            },
        ),
        system_test(
            "the_viewer_reconnects_when_heartbeats_stop",
            browser,
            |(chromium, chromedriver)| {
                on_two_threads(the_viewer_reconnects_when_heartbeats_stop(
                    chromium,
                    chromedriver,
                ));
            },
        ),
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
    let in_page_ms = loop {
        let asked = Instant::now();
        let newest = driver
            .run(
                r##"const rows = document.querySelectorAll("#log .line");
                return [rows.length === 0 ? "" : rows[rows.length - 1].textContent, performance.now()];"##,
            )
            .await;
        round_trips.push(asked.elapsed().as_secs_f64() * 1000.0);
        if newest[0]
            .as_str()
            .is_some_and(|text| text.starts_with(&format!("backlog line {}", BACKLOG - 1)))
        {
            // Milliseconds since the navigation started, by the page's clock: an upper bound.
            break newest[1].as_f64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the backlog was never shown: {newest}"
        );
    };
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
    // The rows kept are the newest, with no gap: a burst's older rows are filled in before its
    // newest, and the oldest rows go first.
    let seqs = driver
        .run(r##"return Array.from(document.querySelectorAll("#log .line"), (el) => Number(el.dataset.seq));"##)
        .await;
    let seqs: Vec<u64> = seqs
        .as_array()
        .unwrap()
        .iter()
        .map(|seq| seq.as_u64().unwrap())
        .collect();
    assert!(seqs.len() >= 9_900, "{} rows kept", seqs.len());
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "consecutive, newest last: first {:?}, last {:?}",
        seqs.first(),
        seqs.last()
    );
    assert_eq!(*seqs.last().unwrap(), written - 1);
    assert_eq!(
        page[1],
        format!(
            "burst line {} with some text to make it look like a log line",
            RATE * SECONDS - 1
        ),
        "the newest line is shown"
    );
    // Filter and search over the rows kept, timed inside the page.
    let timed = |mode: &str, text: &str| {
        format!(
            r#"const mode = document.getElementById("mode"), search = document.getElementById("search");
            mode.value = "{mode}"; mode.dispatchEvent(new Event("change"));
            const started = performance.now();
            search.value = "{text}"; search.dispatchEvent(new Event("input"));
            const took = performance.now() - started;
            search.value = ""; search.dispatchEvent(new Event("input"));
            return took;"#
        )
    };
    let filter_ms = driver.run(&timed("filter", "line 9999")).await;
    let highlight_ms = driver.run(&timed("highlight", "line 9999")).await;
    burst_trips.sort_by(f64::total_cmp);
    eprintln!("viewer: filter over the rows kept took {filter_ms} ms, highlight {highlight_ms} ms");
    eprintln!(
        "viewer: {BACKLOG}-line backlog shown in {backlog_shown:?} ({in_page_ms:.0} ms after the \
         navigation started, by the page's clock; script round trips up to \
         {backlog_max:.1} ms meanwhile); {RATE}/s for {SECONDS} s: {received} received, {missed} \
         missed; round trips p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} calls",
        quantile(&burst_trips, 0.5),
        quantile(&burst_trips, 0.99),
        burst_trips.last().unwrap(),
        burst_trips.len()
    );
    driver.quit().await;
}

/// Sets a control's value (or checks a box) and tells the page, as a user's input would.
/// A subscriber of every level that writes only each event's message into `buf`.
fn messages_only(buf: &LogBuffer) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_level(false)
        .finish()
}

/// A buffer with one entry at each of four levels: "debug one" to "error four".
fn four_levels() -> LogBuffer {
    let buf = LogBuffer::new();
    tracing::subscriber::with_default(messages_only(&buf), || {
        tracing::debug!("debug one");
        tracing::info!("info two");
        tracing::warn!("warn three");
        tracing::error!("error four");
    });
    buf
}

fn set(id: &str, value: &str) -> String {
    format!(
        r#"const el = document.getElementById("{id}");
        if (el.type === "checkbox") el.checked = {value:?} === "on"; else el.value = {value:?};
        el.dispatchEvent(new Event(el.tagName === "SELECT" || el.type === "checkbox" ? "change" : "input"));
        return null;"#
    )
}

/// The texts of the lines the page shows (not hidden).
async fn visible_lines(driver: &Driver) -> Vec<String> {
    let lines = driver
        .run(
            r#"return Array.from(document.querySelectorAll(".line:not([hidden])"), (el) => el.textContent);"#,
        )
        .await;
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap().to_owned())
        .collect()
}

/// Waits (bounded) until the lines the page shows are `expected`.
async fn until_visible(driver: &Driver, expected: &[&str]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines = visible_lines(driver).await;
        if lines == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page showed {lines:?}, not {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Level select, search (filter and highlight, plain and regex, invalid regex), pause with its
/// count, download and permalinks.
async fn the_viewer_filters_searches_pauses_downloads_and_links(
    chromium: PathBuf,
    chromedriver: PathBuf,
) {
    let buf = four_levels();
    buf.append(b"plain five\n");
    let address = serve(memtail::http::router(buf.clone())).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    let all = [
        "debug one",
        "info two",
        "warn three",
        "error four",
        "plain five",
    ];
    until_visible(&driver, &all).await;

    // Level: warn and worse from the server; lines without a level are left out.
    driver.run(&set("level", "warn")).await;
    until_visible(&driver, &["warn three", "error four"]).await;
    driver.run(&set("level", "")).await;
    until_visible(&driver, &all).await;

    // Search, filtering: plain text, any case; then a regular expression.
    driver.run(&set("search", "O")).await;
    until_visible(&driver, &["debug one", "info two", "error four"]).await;
    driver.run(&set("regex", "on")).await;
    driver.run(&set("search", "^(warn|plain) ")).await;
    until_visible(&driver, &["warn three", "plain five"]).await;
    // An invalid one says so and matches nothing.
    driver.run(&set("search", "([")).await;
    until_visible(&driver, &[]).await;
    let invalid = driver
        .run(r#"const s = document.getElementById("search"); return [s.className, s.title];"#)
        .await;
    assert_eq!(invalid[0], "invalid", "{invalid}");
    assert!(invalid[1]
        .as_str()
        .unwrap()
        .starts_with("invalid regular expression"));
    // Highlighting: every line shown, the matches marked.
    driver.run(&set("search", "o")).await;
    driver.run(&set("mode", "highlight")).await;
    until_visible(&driver, &all).await;
    let marked = driver
        .run(r#"return Array.from(CSS.highlights.get("search"), (range) => range.toString());"#)
        .await;
    // "debug one", "info two", "error four" (twice: "err-o-r f-o-ur"), "plain five": none.
    assert_eq!(marked.as_array().unwrap().len(), 5, "{marked}");
    driver.run(&set("search", "")).await;
    driver.run(&set("mode", "filter")).await;

    // Pause: new lines wait, counted.
    driver
        .run(r#"document.getElementById("pause").click(); return null;"#)
        .await;
    for n in 0..3 {
        buf.append(format!("paused {n}\n").as_bytes());
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = driver
            .run(r#"return document.getElementById("pause").textContent;"#)
            .await;
        if text == "resume (3 new)" {
            break;
        }
        assert!(Instant::now() < deadline, "the pause button said {text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        visible_lines(&driver).await.len(),
        5,
        "nothing added while paused"
    );
    driver
        .run(r#"document.getElementById("pause").click(); return null;"#)
        .await;
    let mut with_paused = all.to_vec();
    with_paused.extend(["paused 0", "paused 1", "paused 2"]);
    until_visible(&driver, &with_paused).await;

    // Download: the lines shown, filters applied.
    driver.run(&set("search", "paused")).await;
    let downloaded = driver
        .run(
            r#"const made = URL.createObjectURL;
            let blob = null;
            URL.createObjectURL = (b) => { blob = b; return made(b); };
            document.getElementById("download").click();
            URL.createObjectURL = made;
            return blob.text();"#,
        )
        .await;
    assert_eq!(downloaded, "paused 0\npaused 1\npaused 2\n");
    driver.run(&set("search", "")).await;

    // Permalinks: a line still shown is marked; one that is not says so.
    driver.go(&format!("http://{address}/#seq=2")).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let marked = driver
            .run(r#"return Array.from(document.querySelectorAll(".line.marked"), (el) => el.textContent);"#)
            .await;
        if marked.as_array().is_some_and(|marked| !marked.is_empty()) {
            assert_eq!(marked[0], "warn three");
            break;
        }
        assert!(Instant::now() < deadline, "no line marked");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    driver.run(&set("level", "error")).await;
    until_visible(&driver, &["error four"]).await;
    driver
        .run(r##"location.hash = "#seq=1"; return null;"##)
        .await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, notices) = shown(&driver).await;
        if notices
            .iter()
            .any(|notice| notice == "line 1 is no longer shown")
        {
            break;
        }
        assert!(Instant::now() < deadline, "notices: {notices:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    driver.quit().await;
}

/// A proxy to `target` whose connections can be frozen: they stay open and pass nothing more,
/// as behind a dead router. Connections made after a freeze flow.
async fn freezing_proxy(
    target: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let freezes = std::sync::Arc::clone(&generation);
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let born = freezes.load(Ordering::SeqCst);
            let freezes = std::sync::Arc::clone(&freezes);
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let (mut client_in, mut client_out) = client.split();
                let (mut server_in, mut server_out) = server.split();
                let up = tokio::io::copy(&mut client_in, &mut server_out);
                let down = async {
                    let mut chunk = [0u8; 8192];
                    loop {
                        let n = tokio::io::AsyncReadExt::read(&mut server_in, &mut chunk).await?;
                        if n == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                        if freezes.load(Ordering::SeqCst) != born {
                            // Frozen: hold the connection open, pass nothing.
                            std::future::pending::<()>().await;
                        }
                        tokio::io::AsyncWriteExt::write_all(&mut client_out, &chunk[..n]).await?;
                    }
                };
                let _ = tokio::join!(up, down);
            });
        }
    });
    (address, generation)
}

/// The connection goes dead without closing (heartbeats stop): the page notices within two
/// heartbeats, reconnects, and shows what was written meanwhile.
async fn the_viewer_reconnects_when_heartbeats_stop(chromium: PathBuf, chromedriver: PathBuf) {
    let buf = LogBuffer::new();
    buf.append(b"before\n");
    let server = serve(
        memtail::http::Config::new()
            .keep_alive(std::time::Duration::from_millis(300))
            .router(buf.clone()),
    )
    .await;
    let (address, freezes) = freezing_proxy(server).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    until_visible(&driver, &["before"]).await;
    let reconnects = || async {
        let state = driver
            .run(r#"const s = document.getElementById("state"); return [s.textContent, Number(s.dataset.reconnects || 0)];"#)
            .await;
        (
            state[0].as_str().unwrap().to_owned(),
            state[1].as_u64().unwrap(),
        )
    };
    let (state, before) = reconnects().await;
    assert_eq!(state, "live");
    freezes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    buf.append(b"after\n");
    until_visible(&driver, &["before", "after"]).await;
    let (_, after) = reconnects().await;
    assert!(
        after > before,
        "the page reconnected: {before} then {after}"
    );
    driver.quit().await;
}

fn on_two_threads(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
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

/// A log that records times: the page shows each entry's time (UTC, to the millisecond) before
/// it, unless the line begins with a time of its own; a log without times shows none.
async fn the_viewer_shows_times_and_filters_by_target(chromium: PathBuf, chromedriver: PathBuf) {
    let timed = LogBuffer::builder().timestamps(true).build();
    timed.append(b"plain entry\n");
    timed.append(b"2026-11-23T10:00:00Z has its own\n");
    // RFC 3339 in UTC with microseconds, as memtail renders times everywhere.
    let expected = timed
        .entries()
        .iter()
        .map(|entry| format!("{} ", memtail::render::time(entry.time().unwrap())))
        .collect::<Vec<_>>();
    let address = serve(memtail::http::router(timed.clone())).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.go(&format!("http://{address}/")).await;
    until_shown(&driver, |lines, _| lines.len() == 2).await;
    let (lines, _) = shown(&driver).await;
    assert_eq!(lines[0], format!("{}plain entry", expected[0]));
    assert_eq!(lines[1], "2026-11-23T10:00:00Z has its own");

    let untimed = LogBuffer::new();
    untimed.append(b"no time\n");
    let address = serve(memtail::http::router(untimed)).await;
    driver.go(&format!("http://{address}/")).await;
    until_shown(&driver, |lines, _| lines.len() == 1).await;
    assert_eq!(shown(&driver).await.0, ["no time"]);

    // The target box keeps one target and those under it, and entries without a target.
    let targeted = LogBuffer::new();
    tracing::subscriber::with_default(messages_only(&targeted), || {
        tracing::info!(target: "app::db", "db line");
        tracing::info!(target: "app::web", "web line");
    });
    targeted.append(b"plain\n");
    let address = serve(memtail::http::router(targeted)).await;
    driver.go(&format!("http://{address}/")).await;
    until_shown(&driver, |lines, _| lines.len() == 3).await;
    driver
        .run(
            r#"const el = document.getElementById("target");
            el.value = "app::db";
            el.dispatchEvent(new Event("change"));
            return null;"#,
        )
        .await;
    until_shown(&driver, |lines, _| lines == ["db line", "plain"]).await;

    // Lines are coloured by their entry's level, not by escapes in their text: the layer's
    // entries have none.
    let leveled = LogBuffer::new();
    let subscriber = tracing_subscriber::registry().with(leveled.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(target: "app", "failed");
        tracing::warn!(target: "app", "slow");
        tracing::info!(target: "app", "ok");
        tracing::debug!(target: "app", "detail");
    });
    leveled.append(b"no level\n");
    let address = serve(memtail::http::router(leveled)).await;
    driver.go(&format!("http://{address}/")).await;
    until_shown(&driver, |lines, _| lines.len() == 5).await;
    let page = driver
        .run(
            r##"return Array.from(document.querySelectorAll("#log .line")).map((el) => [
                el.className, getComputedStyle(el).color, el.textContent]);"##,
        )
        .await;
    let rows: Vec<(String, String, String)> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let field = |n: usize| row[n].as_str().unwrap().to_owned();
            (field(0), field(1), field(2))
        })
        .collect();
    let classes: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    assert_eq!(
        classes,
        [
            "line lv-error",
            "line lv-warn",
            "line lv-info",
            "line lv-debug",
            "line"
        ]
    );
    // Error, warning and debug each in a colour of its own; info as plain lines.
    let colors: Vec<&str> = rows.iter().map(|row| row.1.as_str()).collect();
    assert_ne!(colors[0], colors[2], "{colors:?}");
    assert_ne!(colors[1], colors[2], "{colors:?}");
    assert_ne!(colors[3], colors[2], "{colors:?}");
    assert_eq!(colors[2], colors[4], "{colors:?}");
    assert!(rows[0].2.ends_with("Z ERROR app: failed"), "{rows:?}");
    assert!(rows.iter().all(|row| !row.2.contains('\u{1b}')), "{rows:?}");
    driver.quit().await;
}

/// The page's address holds its view: `level`, `target`, `q`, `regex` and `mode` are read at
/// load and written back as they change; back and forward step through the views. Its title
/// names what is served.
async fn the_viewer_keeps_its_view_in_the_url_and_names_what_it_serves(
    chromium: PathBuf,
    chromedriver: PathBuf,
) {
    let buf = four_levels();
    let app = memtail::http::Config::new()
        .title("billing-api")
        .router(buf.clone());
    let address = serve(app).await;
    let driver = Driver::start(&chromium, &chromedriver).await;

    // A shared view: warn and worse, searching for "r".
    driver
        .go(&format!("http://{address}/?level=warn&q=r"))
        .await;
    until_visible(&driver, &["warn three", "error four"]).await;
    let controls = driver
        .run(
            r#"return [document.title, document.getElementById("level").value,
                document.getElementById("search").value];"#,
        )
        .await;
    assert_eq!(
        controls,
        serde_json::json!(["billing-api \u{b7} memtail", "warn", "r"])
    );

    // A change goes into the address.
    driver.run(&set("level", "error")).await;
    until_visible(&driver, &["error four"]).await;
    let search = driver.run("return location.search;").await;
    assert_eq!(search, "?level=error&q=r");

    // Back: the view before, from the server again; forward: the one after.
    driver.run("history.back(); return null;").await;
    until_visible(&driver, &["warn three", "error four"]).await;
    let level = driver
        .run(r#"return document.getElementById("level").value;"#)
        .await;
    assert_eq!(level, "warn");
    driver.run("history.forward(); return null;").await;
    until_visible(&driver, &["error four"]).await;

    // A regular expression, highlighted rather than filtered, from the address too.
    driver
        .go(&format!("http://{address}/?q=%5E(debug%7Cinfo)&regex=1"))
        .await;
    until_visible(&driver, &["debug one", "info two"]).await;
    driver.run(&set("mode", "highlight")).await;
    until_visible(
        &driver,
        &["debug one", "info two", "warn three", "error four"],
    )
    .await;
    let search = driver.run("return location.search;").await;
    assert_eq!(search, "?q=%5E%28debug%7Cinfo%29&regex=1&mode=highlight");
}
