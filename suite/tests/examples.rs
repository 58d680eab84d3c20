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
    ]);
}

fn the_flight_recorder_prints_the_context_of_an_error_and_the_ring_on_panic(example: PathBuf) {
    let mut run = Process::spawn(
        Command::new(&example)
            .arg("--panic")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
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
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(!status.success(), "it panics when asked");
    // The console: INFO and ERROR, no DEBUG.
    assert!(stdout.contains("payment service unreachable"), "{stdout}");
    assert!(!stdout.contains("DEBUG"), "{stdout}");
    // The context of the error: the four debug lines before it, then it.
    let context = stderr
        .split("--- memtail: entry 16 is ERROR; the 4 entries before it, then it ---\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stderr}"));
    let lines: Vec<&str> = context.lines().take(5).collect();
    assert!(
        lines[..4].iter().all(|line| line.starts_with("DEBUG")),
        "{lines:?}"
    );
    assert!(lines[4].starts_with("ERROR"), "{lines:?}");
    // The dump on panic: every entry, then the panic message last.
    let dump = &stderr[stderr
        .find("--- memtail dump:")
        .unwrap_or_else(|| panic!("{stderr}"))..];
    assert!(dump.contains("25 entries retained (seq 0 to 24)"), "{dump}");
    let end = dump.find("--- end of memtail dump ---").unwrap();
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
