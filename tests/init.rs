//! `memtail::init()`'s set-up, in a child process (it installs a global subscriber and a panic
//! hook): the console gets INFO and above with `RUST_LOG` unset, memory gets DEBUG, each panic
//! becomes an ERROR entry, the viewer is served, and a second set-up is refused.

#[path = "support/process.rs"]
mod process;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use process::{with_deadline, Process};

/// Set in the child.
const CHILD: &str = "MEMTAIL_INIT_CHILD";

/// The child's part (ignored when the tests are run directly: it installs globals).
#[test]
#[ignore = "the child process of init_sets_up_console_memory_panics_and_the_viewer"]
fn child_sets_up_and_logs() {
    assert!(std::env::var(CHILD).is_ok(), "run by the test below only");
    let log = memtail::Init::new().serve("127.0.0.1:0").init();
    tracing::debug!(target: "app", "debug line");
    tracing::info!(target: "app", user = "ada", "info line");
    assert!(std::panic::catch_unwind(|| panic!("caught")).is_err());
    // What memory holds, as people read it.
    for entry in log.entries() {
        print!("memory: {}", entry.rendered());
    }
    let refused = memtail::Init::new().try_init().unwrap_err();
    println!("second: {refused}");
    // The viewer's address, from the line that announced it; its snapshot has the lines.
    let announced = log
        .entries()
        .iter()
        .find_map(|entry| {
            let text = String::from_utf8_lossy(entry).into_owned();
            let at = text.find("http://")?;
            Some(text[at + 7..].trim_end().trim_end_matches('/').to_owned())
        })
        .expect("the viewer's address was logged");
    let mut client = std::net::TcpStream::connect(&announced).unwrap();
    write!(
        client,
        "GET /snapshot HTTP/1.1\r\nHost: {announced}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    println!("served: {}", answer.contains("Z DEBUG app: debug line\n"));
}

#[test]
fn init_sets_up_console_memory_panics_and_the_viewer() {
    with_deadline(Duration::from_secs(120), || {
        let mut child = Process::spawn(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_sets_up_and_logs",
                    "--ignored",
                    "--nocapture",
                ])
                .args(["--test-threads", "1"])
                .env(CHILD, "1")
                .env_remove("RUST_LOG")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let mut stdout = child.stdout().unwrap();
        let mut stderr = child.stderr().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        let status = child.wait(Duration::from_secs(60));
        let console = errors.join().unwrap();
        assert!(status.success(), "{out}\n{console}");
        let memory: Vec<&str> = out
            .lines()
            // (The test harness may start the line with the test's name.)
            .filter_map(|line| Some(&line[line.find("memory: ")? + "memory: ".len()..]))
            .map(|line| line.split_at(28).1)
            .collect();
        assert_eq!(memory[1], "DEBUG app: debug line", "{memory:?}");
        assert_eq!(memory[2], "INFO  app: info line user=\"ada\"", "{memory:?}");
        assert!(
            memory[0].starts_with("INFO  memtail: the log's viewer is at http://127.0.0.1:"),
            "{memory:?}"
        );
        assert!(
            memory[3].starts_with("ERROR panic: thread '")
                && memory[3].contains("panicked at tests/init.rs:")
                && memory[3].ends_with(": caught"),
            "{memory:?}"
        );
        assert!(
            out.contains("second: a global tracing subscriber is set already"),
            "{out}"
        );
        assert!(out.contains("served: true"), "{out}");
        // The console: INFO and above (RUST_LOG is not set), no colours (NO_COLOR).
        assert!(
            console.contains("INFO app: info line user=\"ada\""),
            "{console}"
        );
        assert!(console.contains("the log's viewer is at"), "{console}");
        assert!(!console.contains("debug line"), "{console}");
        assert!(!console.contains('\u{1b}'), "{console}");
    });
}
