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
    memtail_suite::run(vec![system_test(
        "the_live_example_listens_on_loopback_only",
        || built_example("live"),
        the_live_example_listens_on_loopback_only,
    )]);
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
