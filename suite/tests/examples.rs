//! memtail's examples, run as a user would run them.
//!
//! `cargo test` builds the examples beside the test binaries (`target/debug/examples`) when it
//! builds everything. When it did not (`cargo test -p memtail-suite --test examples`), these tests
//! are reported as ignored, with the reason, unless `MEMTAIL_REQUIRE_EXAMPLES` is set (as in CI).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use memtail_suite::process::Process;
use memtail_suite::{system_test, Missing};

fn main() {
    memtail_suite::run(vec![
        system_test(
            "the_live_example_listens_on_loopback_only",
            || built_example("live"),
            the_live_example_listens_on_loopback_only,
        ),
        system_test(
            "the_flight_recorder_prints_the_context_of_an_error_and_the_ring_on_panic",
            || built_example("flight_recorder"),
            the_flight_recorder_prints_the_context_of_an_error_and_the_ring_on_panic,
        ),
        system_test(
            "the_tracing_recipe_keeps_debug_in_memory_and_shows_rust_log_on_the_console",
            || built_example("tracing"),
            the_tracing_recipe_keeps_debug_in_memory_and_shows_rust_log_on_the_console,
        ),
        system_test(
            "the_log_recipe_keeps_debug_in_memory_and_shows_rust_log_on_stderr",
            || built_example("log"),
            the_log_recipe_keeps_debug_in_memory_and_shows_rust_log_on_stderr,
        ),
    ]);
}

/// Runs an example to its end with `RUST_LOG` set to `rust_log`, or unset; its exit status,
/// standard output and standard error.
fn run(example: &PathBuf, args: &[&str], rust_log: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(example);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match rust_log {
        Some(value) => command.env("RUST_LOG", value),
        None => command.env_remove("RUST_LOG"),
    };
    let mut run = Process::spawn(&mut command);
    let read_all = |mut from: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = from.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(run.stdout().unwrap()));
    let stderr = read_all(Box::new(run.stderr().unwrap()));
    let status = run.wait(std::time::Duration::from_secs(60));
    (
        status.success(),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// The lines of `text` without the time memtail renders before each entry
/// (`2026-12-04T14:39:53.123456Z `).
fn without_times(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| match line.split_once("Z ") {
            Some((time, rest)) if time.len() == 26 && time.as_bytes()[10] == b'T' => rest,
            _ => line,
        })
        .map(str::to_owned)
        .collect()
}

fn the_tracing_recipe_keeps_debug_in_memory_and_shows_rust_log_on_the_console(example: PathBuf) {
    let (ok, stdout, stderr) = run(&example, &[], None);
    assert!(ok, "{stderr}");
    // Memory: DEBUG and above, as people read it.
    assert_eq!(
        without_times(&stdout),
        [
            "--- memory holds 3 entries:",
            "DEBUG request{id=42}: my_app::db: query done rows=3",
            "INFO  request{id=42}: my_app::api: logged in user=\"ada\"",
            "WARN  my_app: disk almost full disk=\"93%\"",
        ]
    );
    assert!(
        stdout.lines().skip(1).all(|line| line.contains("Z ")),
        "{stdout}"
    );
    // The console, with RUST_LOG unset: INFO and above.
    assert!(stderr.contains("logged in"), "{stderr}");
    assert!(stderr.contains("disk almost full"), "{stderr}");
    assert!(!stderr.contains("query done"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "NO_COLOR: {stderr}");
    // RUST_LOG decides for the console alone.
    let (ok, stdout, stderr) = run(&example, &[], Some("debug"));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("query done"), "{stderr}");
    let (ok, again, stderr) = run(&example, &[], Some("warn"));
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("logged in") && stderr.contains("disk almost full"),
        "{stderr}"
    );
    assert_eq!(without_times(&again).len(), without_times(&stdout).len());
}

fn the_log_recipe_keeps_debug_in_memory_and_shows_rust_log_on_stderr(example: PathBuf) {
    let (ok, stdout, stderr) = run(&example, &[], None);
    assert!(ok, "{stderr}");
    assert_eq!(
        without_times(&stdout),
        [
            "--- memory holds 3 entries:",
            "DEBUG my_app::db: query done rows=3",
            "INFO  my_app::api: logged in user=ada",
            "WARN  my_app: disk almost full disk=93%",
        ]
    );
    // Standard error with RUST_LOG unset: INFO and above, with their times.
    assert_eq!(
        without_times(&stderr),
        [
            "INFO  my_app::api: logged in user=ada",
            "WARN  my_app: disk almost full disk=93%",
        ]
    );
    assert!(stderr.lines().all(|line| line.contains("Z ")), "{stderr}");
    let (ok, _, stderr) = run(&example, &[], Some("my_app::db=debug,warn"));
    assert!(ok, "{stderr}");
    assert_eq!(
        without_times(&stderr),
        [
            "DEBUG my_app::db: query done rows=3",
            "WARN  my_app: disk almost full disk=93%",
        ]
    );
}

fn the_flight_recorder_prints_the_context_of_an_error_and_the_ring_on_panic(example: PathBuf) {
    let (ok, stdout, stderr) = run(&example, &["--panic"], None);
    assert!(!ok, "it panics when asked");
    // The console: INFO and ERROR, no DEBUG.
    assert!(stdout.contains("payment service unreachable"), "{stdout}");
    assert!(!stdout.contains("DEBUG"), "{stdout}");
    // The context of the error: the four debug lines of its request before it, then it.
    let context = stderr
        .split("--- memtail: entry 16 is ERROR; the 4 entries before it, then it ---\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stderr}"));
    let lines: Vec<String> = without_times(context).into_iter().take(5).collect();
    assert!(
        lines[..4]
            .iter()
            .all(|line| line.starts_with("DEBUG request{id=4}: shop::")),
        "{lines:?}"
    );
    assert_eq!(
        lines[4], "ERROR request{id=4}: shop::payment: payment service unreachable",
        "{lines:?}"
    );
    // The dump on panic: every entry, the panic last, then the panic message.
    let dump = &stderr[stderr
        .find("--- memtail dump:")
        .unwrap_or_else(|| panic!("{stderr}"))..];
    assert!(dump.contains("26 entries retained (seq 0 to 25)"), "{dump}");
    let end = dump.find("--- end of memtail dump ---").unwrap();
    let entries = without_times(&dump[..end]);
    assert!(
        entries
            .last()
            .unwrap()
            .starts_with("ERROR panic: thread 'main' panicked at "),
        "{entries:?}"
    );
    assert!(dump[end..].contains("something unexpected"), "{dump}");
}

/// The example `name` as `cargo test` builds it: `target/debug/examples/NAME`.
fn built_example(name: &str) -> Result<PathBuf, Missing> {
    let path = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("examples").join(name)))
        .filter(|path| path.is_file());
    path.ok_or_else(|| Missing {
        reason: format!(
            "the {name} example is not built (run the whole `cargo test --all-features`)"
        ),
        require: "MEMTAIL_REQUIRE_EXAMPLES",
    })
}

fn the_live_example_listens_on_loopback_only(example: PathBuf) {
    let mut live = Process::spawn(
        Command::new(&example)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut first = String::new();
    BufReader::new(live.stdout().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("live: serving ")
        .unwrap_or_else(|| panic!("{first:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0/"), "the real port: {url}");
}
