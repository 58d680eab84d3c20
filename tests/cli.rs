//! The `memtail` command end to end: `memtail serve` on a temporary file, read with `curl -N`
//! (a real SSE client) and with `memtail tail`.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);
const MEMTAIL: &str = env!("CARGO_BIN_EXE_memtail");

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("memtail-cli-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process whose standard output is read line by line; killed when dropped.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the command starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next line of output; fails after the deadline.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line of output within the deadline")
    }

    /// Lines until one for which `keep` holds, skipping the others; returns the kept ones.
    fn lines_where(&self, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut kept = Vec::new();
        while kept.len() < n {
            let line = self.line();
            if keep(&line) {
                kept.push(line);
            }
        }
        kept
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `memtail serve ARGS --listen 127.0.0.1:0` and the address it printed.
fn serve(args: &[&str]) -> (Running, String) {
    let server = Running::start(
        Command::new(MEMTAIL)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null()),
    );
    let first = server.line();
    let url = first
        .strip_prefix("memtail: serving ")
        .unwrap_or_else(|| panic!("the serving line, not {first:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    assert!(!url.ends_with(":0/"), "the real port: {url}");
    (server, url)
}

fn append(path: &PathBuf, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn curl(url: &str) -> Running {
    Running::start(Command::new("curl").args(["-N", "-s", url]))
}

/// Runs `curl -s URL` until its output satisfies `done`; a bounded poll.
fn curl_until(url: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let output = Command::new("curl").args(["-s", url]).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never got it: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_a_file_and_read_it_with_curl_and_memtail_tail() {
    let dir = Dir::new("serve");
    let log = dir.0.join("app.log");
    append(&log, "before memtail started\n");
    let (_server, url) = serve(&[log.to_str().unwrap()]);
    let sse = curl(&format!("{url}events"));
    let tail = Running::start(Command::new(MEMTAIL).args(["tail", &url]));
    // Both followers are connected once the server reports two subscribers... which it does not
    // expose; instead, lines are appended until the first one shows up at both.
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut n = 0;
    let first_seen = loop {
        append(&log, &format!("probe {n}\n"));
        if let Ok(line) = tail.lines.recv_timeout(Duration::from_millis(200)) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "memtail tail printed nothing"
        );
        n += 1;
    };
    assert!(first_seen.starts_with("probe "), "{first_seen}");
    let last_probe = n;
    append(&log, "plain line\n");
    append(&log, "\x1b]0;pwned\x07 and \x1b[31mred\x1b[0m\n");
    append(&log, "no newline yet");
    append(&log, ", now done\n");

    // memtail tail: the probes it has not printed yet, then the lines, escaped.
    let printed = tail.lines_where(3, |line| !line.starts_with("probe "));
    assert_eq!(
        printed,
        [
            "plain line",
            "\\x1b]0;pwned\\x07 and \\x1b[31mred\\x1b[0m",
            "no newline yet, now done",
        ]
    );

    // curl: the same entries as SSE events, with their ids.
    let data = sse.lines_where(3, |line| {
        line.starts_with("data: ") && !line.starts_with("data: probe ")
    });
    assert_eq!(data[0], "data: plain line");
    assert_eq!(data[1], "data: \x1b]0;pwned\x07 and \x1b[31mred\x1b[0m");
    assert_eq!(data[2], "data: no newline yet, now done");
    assert!(last_probe < 10_000);

    // The snapshot has every line once, in order.
    let snapshot = curl_until(&format!("{url}snapshot"), |text| {
        text.ends_with("now done\n")
    });
    let probes: Vec<_> = snapshot
        .lines()
        .filter(|l| l.starts_with("probe "))
        .collect();
    assert_eq!(probes.len(), last_probe + 1);
    assert!(
        !snapshot.contains("before memtail started"),
        "started at the end"
    );
}

#[test]
fn raw_output_and_missed_entries() {
    let dir = Dir::new("missed");
    let log = dir.0.join("app.log");
    append(&log, "");
    // 64 bytes of memory: most of the 50 lines below are evicted before anyone reads them.
    let (_server, url) = serve(&[log.to_str().unwrap(), "--capacity", "64"]);
    for n in 0..50 {
        append(&log, &format!("line {n:02}\n"));
    }
    append(&log, "\x1b[1mbold\x1b[0m\n");
    curl_until(&format!("{url}snapshot"), |text| text.contains("bold"));
    let tail = Running::start(Command::new(MEMTAIL).args(["tail", &url, "--since", "0", "--raw"]));
    let missed = tail.line();
    let n: u64 = missed
        .strip_prefix("-- ")
        .and_then(|rest| rest.strip_suffix(" entries missed --"))
        .unwrap_or_else(|| panic!("a missed notice, not {missed:?}"))
        .parse()
        .unwrap();
    let mut rest = Vec::new();
    loop {
        let line = tail.line();
        let done = line.contains("bold");
        rest.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        n + rest.len() as u64,
        51,
        "every line printed or counted: {rest:?}"
    );
    assert_eq!(
        rest.last().unwrap(),
        "\x1b[1mbold\x1b[0m",
        "--raw prints escapes as they are"
    );
}

#[test]
fn several_files_are_prefixed_with_their_names() {
    let dir = Dir::new("several");
    let (a, b) = (dir.0.join("a.log"), dir.0.join("b.log"));
    append(&a, "");
    let (_server, url) = serve(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    append(&a, "from a\n");
    append(&b, "from b\n");
    let snapshot = curl_until(&format!("{url}snapshot"), |text| text.lines().count() == 2);
    let mut lines: Vec<_> = snapshot.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{}: from a", a.display()),
            format!("{}: from b", b.display())
        ]
    );
}

#[test]
fn stdin_is_followed_when_no_file_is_given() {
    let mut server = Command::new(MEMTAIL)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = server.stdin.take().unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("memtail: serving ")
        .unwrap()
        .to_owned();
    stdin.write_all(b"piped in\n").unwrap();
    stdin.flush().unwrap();
    let snapshot = curl_until(&format!("{url}snapshot"), |text| !text.is_empty());
    assert_eq!(snapshot, "piped in\n");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn bad_arguments_give_one_line_and_exit_code_2() {
    for args in [
        &["serve", "--bogus"][..],
        &["serve", "--capacity", "lots"],
        &["serve", "--capacity", "0"],
        &["tail"],
        &["tail", "not a url"],
        &["tail", "https://example.com/"],
        &["serve", "-", "-"],
    ] {
        let output = Command::new(MEMTAIL).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("memtail: "), "{stderr}");
    }
    let help = Command::new(MEMTAIL).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8(help.stdout).unwrap().contains("serve"));
}

#[test]
fn an_unreadable_file_is_named_in_a_clear_message() {
    let dir = Dir::new("unreadable");
    let output = Command::new(MEMTAIL)
        .args(["serve", dir.0.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(dir.0.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("directory"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing served");
}
