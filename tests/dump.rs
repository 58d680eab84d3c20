//! The flight recorder's panic dump, in a child process that panics: its standard error holds the
//! header and every retained entry exactly once, in order, then the panic as an entry, and ends
//! with the panic message of the hook installed before.

#[path = "support/process.rs"]
mod process;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use process::{with_deadline, Process};

/// Set in the child: what it does.
const CHILD: &str = "MEMTAIL_DUMP_CHILD";

/// The child's part, run by `a_panic_dumps_the_ring_before_the_panic_message` (ignored when the
/// tests are run directly: it panics by design).
#[test]
#[ignore = "the child process of a_panic_dumps_the_ring_before_the_panic_message; panics by design"]
fn child_writes_and_panics() {
    let Ok(mode) = std::env::var(CHILD) else {
        panic!("run by a_panic_dumps_the_ring_before_the_panic_message only");
    };
    let buf = memtail::LogBuffer::with_capacity(16 * 1024);
    // A hook of the program's own, as a service may have: it must still run, after the dump.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("previous hook: {info}");
    }));
    match mode.as_str() {
        "stderr" => memtail::dump_on_panic(&buf),
        #[cfg(all(unix, feature = "signal"))]
        "signal" => memtail::dump_on_signal(&buf, memtail::SIGUSR1).unwrap(),
        path => memtail::dump_on_panic_to(&buf, path),
    }
    for n in 0..1000 {
        buf.append(format!("line {n:04}\n").as_bytes());
    }
    if mode == "signal" {
        // Ready for the signal; then wait for the test to end it.
        println!("ready");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(0);
    }
    panic!("something went wrong");
}

/// This test binary, running only `child_writes_and_panics`, in `mode`.
fn child_command(mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_writes_and_panics",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD, mode);
    command
}

fn run_child(mode: &str) -> String {
    let mut child = Process::spawn(
        child_command(mode)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stderr = String::new();
    child.stderr().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait(Duration::from_secs(60));
    assert!(!status.success(), "the child panicked");
    stderr
}

/// Checks one dump: its header, then exactly the newest retained lines, in order, and after
/// them, for a panic's dump, the panic, which the hook appended as an entry of its own.
fn check_dump(dump: &str, panic: bool) {
    let mut lines = dump.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("--- memtail dump: capacity 16384 bytes, "),
        "{header}"
    );
    let mut entries: Vec<&str> = lines
        .take_while(|line| *line != "--- end of memtail dump ---")
        .collect();
    let written = if panic {
        let last = entries.pop().unwrap();
        // `2026-12-04T14:39:53.123456Z ERROR panic: thread '...' panicked at tests/dump.rs:...`
        let (time, panic) = last.split_once(' ').unwrap();
        assert_eq!((time.len(), time.as_bytes()[10]), (27, b'T'), "{last}");
        assert!(panic.starts_with("ERROR panic: thread '"), "{last}");
        assert!(panic.contains("' panicked at tests/dump.rs:"), "{last}");
        assert!(panic.ends_with(": something went wrong"), "{last}");
        1001
    } else {
        1000
    };
    // 10 bytes a line: a 16 KiB ring keeps at least half of itself, in whole lines.
    assert!(
        entries.len() >= 819 && entries.len() <= 1000,
        "{}",
        entries.len()
    );
    let first = 1000 - entries.len();
    let expected: Vec<String> = (first..1000).map(|n| format!("line {n:04}")).collect();
    assert_eq!(entries, expected, "every retained entry once, in order");
    assert!(
        header.contains(&format!(
            "{} entries retained (seq {first} to {}), {written} written, {first} evicted before",
            written - first,
            written - 1,
        )),
        "{header}"
    );
}

#[test]
fn a_panic_dumps_the_ring_before_the_panic_message() {
    with_deadline(Duration::from_secs(120), || {
        let stderr = run_child("stderr");
        assert_eq!(stderr.matches("--- memtail dump:").count(), 1, "{stderr}");
        let dump = &stderr[stderr.find("--- memtail dump:").unwrap()..];
        check_dump(dump, true);
        // The previous hook ran after the dump: its message is the last thing said (the test
        // harness's own lines after it aside).
        let end = dump.find("--- end of memtail dump ---").unwrap();
        let after = &dump[end..];
        assert!(
            after.contains("previous hook: panicked at") && after.contains("something went wrong"),
            "{after}"
        );
    });
}

#[test]
fn a_panic_dump_can_go_to_a_file() {
    with_deadline(Duration::from_secs(120), || {
        let path =
            std::env::temp_dir().join(format!("memtail-panic-dump-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let stderr = run_child(path.to_str().unwrap());
        assert!(!stderr.contains("--- memtail dump:"), "{stderr}");
        assert!(stderr.contains("something went wrong"), "{stderr}");
        let dump = std::fs::read_to_string(&path).unwrap();
        check_dump(&dump, true);
        std::fs::remove_file(&path).unwrap();
    });
}

#[cfg(unix)]
#[test]
fn a_panic_dump_to_a_fifo_nobody_reads_goes_to_stderr_without_waiting() {
    with_deadline(Duration::from_secs(120), || {
        let fifo = std::env::temp_dir().join(format!("memtail-panic-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        // Opening the FIFO to write would wait for a reader forever: the child must not.
        let stderr = run_child(fifo.to_str().unwrap());
        std::fs::remove_file(&fifo).unwrap();
        let said = format!(
            "--- memtail dump: cannot write {0}: {0} is a FIFO, not a regular file",
            fifo.display()
        );
        assert!(stderr.contains(&said), "{stderr}");
        let dump = &stderr[stderr.find("--- memtail dump: capacity").unwrap()..];
        check_dump(dump, true);
        assert!(stderr.contains("something went wrong"), "{stderr}");
    });
}

#[cfg(all(unix, feature = "signal"))]
#[test]
fn a_signal_dumps_the_ring_of_a_running_process() {
    use std::io::{BufRead, BufReader};
    with_deadline(Duration::from_secs(120), || {
        let mut child = Process::spawn(
            child_command("signal")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let mut stdout = BufReader::new(child.stdout().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the child ended early"
            );
        }
        let status = Command::new("kill")
            .args(["-USR1", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut stderr = BufReader::new(child.stderr().unwrap());
        let mut dump = String::new();
        loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "{dump}");
            let done = line.starts_with("--- end of memtail dump ---");
            if dump.is_empty() && !line.starts_with("--- memtail dump:") {
                continue;
            }
            dump.push_str(&line);
            if done {
                break;
            }
        }
        check_dump(&dump, false);
        // Still running after the dump; its stdin closing ends it.
        assert!(child.try_wait().is_none());
        drop(child.stdin());
    });
}

#[cfg(all(unix, feature = "signal"))]
#[test]
fn signals_that_cannot_be_handled_are_refused_with_an_error() {
    let buf = memtail::LogBuffer::new();
    for signal in [9, 19, 11, 0, -1, 200] {
        let error = memtail::dump_on_signal(&buf, signal).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{signal}");
    }
}
