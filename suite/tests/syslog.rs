//! `SyslogPublisher` against a real rsyslog daemon on loopback: messages arrive whole and in order
//! over TCP and UDP, and over TCP the publisher rides out a daemon restart with exact accounting.
//!
//! Needs `rsyslogd` on the PATH (Debian's `rsyslog`; `.ci/run` installs it) or named by
//! `MEMTAIL_RSYSLOGD`. Without it the tests are reported as ignored, with the reason, unless
//! `MEMTAIL_REQUIRE_RSYSLOG` is set (as in CI): then they fail.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memtail::publish::{PublisherBuilder, PublisherHandle, PublisherStats, SyslogPublisher};
use memtail::LogBuffer;
use memtail_suite::process::Process;
use memtail_suite::{need_program, system_test, Missing};

fn main() {
    memtail_suite::run(vec![
        system_test(
            "rsyslog_stores_every_message_intact_over_tcp_and_udp",
            rsyslogd,
            rsyslog_stores_every_message_intact_over_tcp_and_udp,
        ),
        system_test(
            "tcp_publishing_survives_a_daemon_restart_with_exact_accounting",
            rsyslogd,
            tcp_publishing_survives_a_daemon_restart_with_exact_accounting,
        ),
    ]);
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rsyslogd() -> Result<PathBuf, Missing> {
    need_program(
        "rsyslogd",
        "MEMTAIL_RSYSLOGD",
        "apt-get install rsyslog",
        "MEMTAIL_REQUIRE_RSYSLOG",
    )
}

/// An rsyslog daemon in the foreground, listening on loopback, writing each message's PRI, header
/// fields and JSON-escaped MSG as one line per message into `tcp.log` or `udp.log`.
struct Rsyslog {
    dir: PathBuf,
    daemon: Option<Process>,
    tcp_port: u16,
    udp_port: u16,
}

impl Rsyslog {
    fn start(binary: &Path, name: &str) -> Rsyslog {
        let dir =
            std::env::temp_dir().join(format!("memtail-rsyslog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let udp_port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut daemon = Rsyslog {
            dir,
            daemon: None,
            tcp_port: 0,
            udp_port,
        };
        daemon.run(binary);
        daemon
    }

    /// Starts the daemon: on a port of its choosing the first time, on the same port after that.
    fn run(&mut self, binary: &Path) {
        let dir = self.dir.display();
        let port_file = self.dir.join("tcp.port");
        let _ = std::fs::remove_file(&port_file);
        let config = format!(
            r#"global(workDirectory="{dir}" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
module(load="imudp")
template(name="line" type="string" string="%pri% %hostname% %app-name% %procid% %msg:::json%\n")
ruleset(name="tcp") {{ action(type="omfile" file="{dir}/tcp.log" template="line") }}
ruleset(name="udp") {{ action(type="omfile" file="{dir}/udp.log" template="line") }}
input(type="imtcp" address="127.0.0.1" port="{tcp}" listenPortFileName="{port_file}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
"#,
            tcp = self.tcp_port,
            udp = self.udp_port,
            port_file = port_file.display(),
        );
        let config_path = self.dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).unwrap();
        let daemon = Process::spawn(
            Command::new(binary)
                .arg("-n")
                .arg("-f")
                .arg(&config_path)
                .arg("-i")
                .arg(self.dir.join("rsyslog.pid"))
                .stdin(Stdio::null()),
        );
        self.daemon = Some(daemon);
        if self.tcp_port == 0 {
            // rsyslog writes the port it chose into the port file once it listens.
            wait_for("rsyslog's TCP port", || {
                std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|port| port.trim().parse::<u16>().ok())
                    .is_some_and(|port| {
                        self.tcp_port = port;
                        true
                    })
            });
        } else {
            // On a given port it writes no port file: look for the listening socket instead.
            let listening = format!(":{:04X} 00000000:0000 0A", self.tcp_port);
            wait_for("rsyslog's TCP listener", || {
                std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&listening))
            });
        }
        let udp = format!(":{:04X} ", self.udp_port);
        wait_for("rsyslog's UDP socket", || {
            std::fs::read_to_string("/proc/net/udp").is_ok_and(|table| table.contains(&udp))
        });
    }

    /// Stops the daemon with SIGTERM, as an init system would, and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.terminate(Duration::from_secs(30));
        }
    }

    /// The messages stored so far in `file`: (PRI and header fields, MSG).
    fn messages(&self, file: &str) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text.lines()
            .map(|line| {
                let mut fields = line.splitn(5, ' ');
                let header: Vec<&str> = fields.by_ref().take(4).collect();
                (header.join(" "), unescape_json(fields.next().unwrap_or("")))
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        // The daemon's guard kills it first.
        self.daemon = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Undoes rsyslog's JSON string escaping.
fn unescape_json(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn sample_entries() -> Vec<String> {
    let mut entries: Vec<String> = vec![
        "plain line".into(),
        "a tab\there and\ttwo".into(),
        "UTF-8: grüße, ünïcödé, 日本語, ✓".into(),
        "an embedded\nnewline, then more".into(),
        "  leading and trailing spaces  ".into(),
        "quotes \" and backslashes \\ and {braces}".into(),
    ];
    entries.extend((0..24).map(|i| format!("request {i} path=/items/{} status=200", i * 7)));
    entries
}

/// A publisher to the daemon with the test's header fields, a short interval and quick retries
/// that never give up on an entry.
fn publisher(buf: &LogBuffer, syslog: SyslogPublisher) -> PublisherBuilder<SyslogPublisher> {
    buf.publisher(
        syslog
            .hostname("testhost")
            .app_name("memtail-test")
            .procid("42"),
    )
    .interval(Duration::from_millis(5))
    .backoff(Duration::from_millis(5), Duration::from_millis(50))
    .max_attempts(u32::MAX)
}

fn check_delivery(daemon: &Rsyslog, file: &str, handle: PublisherHandle, sent: &[String]) {
    wait_for("every message in rsyslog's file", || {
        daemon.messages(file).len() >= sent.len()
    });
    let stats = handle.stop(Duration::from_secs(10));
    assert_eq!(stats.delivered, sent.len() as u64, "{stats:?}");
    let stored = daemon.messages(file);
    let messages: Vec<&str> = stored.iter().map(|(_, msg)| msg.as_str()).collect();
    assert_eq!(messages, sent, "all messages, in order, intact");
    for (header, _) in &stored {
        // user.info = 1 * 8 + 6
        assert_eq!(header, "14 testhost memtail-test 42");
    }
}

fn rsyslog_stores_every_message_intact_over_tcp_and_udp(binary: PathBuf) {
    let daemon = Rsyslog::start(&binary, "intact");
    let sent = sample_entries();

    let transports = [
        (
            SyslogPublisher::tcp(("127.0.0.1", daemon.tcp_port)).unwrap(),
            "tcp.log",
        ),
        (
            SyslogPublisher::udp(("127.0.0.1", daemon.udp_port)).unwrap(),
            "udp.log",
        ),
    ];
    for (syslog, file) in transports {
        let buf = LogBuffer::new();
        let handle = publisher(&buf, syslog).start();
        for entry in &sent {
            buf.append(format!("{entry}\n").as_bytes());
        }
        check_delivery(&daemon, file, handle, &sent);
    }
}

fn tcp_publishing_survives_a_daemon_restart_with_exact_accounting(binary: PathBuf) {
    let mut daemon = Rsyslog::start(&binary, "restart");
    let buf = LogBuffer::new();
    let syslog = SyslogPublisher::tcp(("127.0.0.1", daemon.tcp_port)).unwrap();
    let handle = publisher(&buf, syslog).queue(10).start();
    let stats = |handle: &PublisherHandle| -> PublisherStats { handle.stats() };

    // Phase 1: the daemon is up.
    for i in 0..10 {
        buf.append(format!("before {i}\n").as_bytes());
    }
    wait_for("phase 1 delivered", || stats(&handle).delivered == 10);
    wait_for("phase 1 stored", || daemon.messages("tcp.log").len() == 10);

    // Phase 2: the daemon is down; three bursts of 10 overflow the queue of 10.
    daemon.stop();
    for burst in 0..3 {
        for i in 0..10 {
            buf.append(format!("while down {burst}.{i}\n").as_bytes());
        }
        let taken = 10 + (burst + 1) * 10;
        wait_for("the burst queued", || stats(&handle).received == taken);
    }
    wait_for("a failed attempt", || stats(&handle).failed_attempts > 0);
    let down = stats(&handle);
    assert_eq!(down.delivered, 10);
    assert_eq!(down.dropped_queue_full, 20);
    assert_eq!(down.queued, 10);

    // Phase 3: the daemon is back on the same port; what fit in the queue arrives.
    daemon.run(&binary);
    wait_for("the queue delivered", || stats(&handle).delivered == 20);
    let final_stats = handle.stop(Duration::from_secs(10));
    wait_for("phase 3 stored", || daemon.messages("tcp.log").len() >= 20);

    let stored: Vec<String> = daemon
        .messages("tcp.log")
        .into_iter()
        .map(|(_, msg)| msg)
        .collect();
    let mut expected: Vec<String> = (0..10).map(|i| format!("before {i}")).collect();
    expected.extend((0..10).map(|i| format!("while down 2.{i}")));
    assert_eq!(stored, expected, "nothing lost that fit, nothing repeated");
    assert_eq!(final_stats.delivered + final_stats.dropped(), 40);
    assert_eq!(final_stats.dropped_queue_full, 20);
    assert_eq!(final_stats.dropped_upstream, 0);
    assert!(final_stats.failed_attempts > 0);
}
