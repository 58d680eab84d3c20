//! Memory under attack with JSON streams: 1000 clients of `/events?format=json` that never read,
//! while 1 GiB of 1000-byte entries of control characters (each escaped in six bytes: `\u0001`)
//! is written into a 1 MiB ring. A stream frames its batch a piece at a time, so a stalled client
//! pins its batch's entries and a piece of their events, not the whole batch six times over: the
//! `memtail::http` docs' bound holds for JSON too.
//!
//! Alone in its test binary, so that no other test's memory is counted.
#![cfg(target_os = "linux")]

mod common;

/// The same bound as for plain streams.
const BOUND: u64 = 400 << 20;

#[test]
fn a_thousand_json_clients_that_never_read_keep_the_server_under_400_mb_and_flat() {
    let mut entry = vec![1u8; 999];
    entry.push(b'\n');
    common::stalled::a_thousand_stalled_clients("/events?format=json", &entry, BOUND);
}
