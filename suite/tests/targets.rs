//! Target names are kept within a bound in bytes, whatever a program logs, and an entry whose
//! target could not be recorded is no target's: `?target=billing` answers billing's lines only.

use std::io::{Read, Write};

use log::Log;
use memtail::LogBuffer;

/// This process's resident memory, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn record(logger: &memtail::log::Logger, target: &str, message: &str) {
    logger.log(
        &log::Record::builder()
            .level(log::Level::Info)
            .target(target)
            .args(format_args!("{message}"))
            .build(),
    );
}

#[test]
fn six_thousand_targets_of_64_kib_take_little_and_are_no_target_s() {
    let buf = LogBuffer::with_capacity(1 << 20);
    let logger = memtail::log::Logger::new(&buf, log::LevelFilter::Info);
    let before = rss_bytes();
    let mut name = "secret_app".repeat(64 * 1024 / 10);
    for n in 0..6000 {
        // A new name each time (the end changes), 64 KiB long.
        name.truncate(64 * 1024 - 8);
        name.push_str(&format!("{n:08}"));
        record(&logger, &name, "secret line");
    }
    // What the ring holds at the end: billing's lines among the unrecorded targets' (each of
    // those is 64 KiB long, with its target).
    for n in 0..5 {
        record(&logger, "billing", &format!("invoice {n}"));
        record(&logger, &name, "secret line");
    }
    let grown = rss_bytes().saturating_sub(before);
    eprintln!("resident memory grew by {} KiB", grown / 1024);
    assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
    assert_eq!(
        buf.entries().last().unwrap().target(),
        Some("<target not recorded>")
    );

    let server = memtail::http::Config::new()
        .spawn(buf.clone(), "127.0.0.1:0")
        .unwrap();
    let address = server.local_addr();
    let mut client = std::net::TcpStream::connect(address).unwrap();
    write!(
        client,
        "GET /snapshot?target=billing HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let lines: Vec<&str> = body.lines().collect();
    assert!(!lines.is_empty(), "{answer}");
    assert!(
        lines
            .iter()
            .all(|line| line.contains(" INFO  billing: invoice ")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(server.stop(std::time::Duration::from_secs(10)));
}
