//! Memory under attack, read from `/proc/self/status`: 1000 Server-Sent Events clients that
//! connect with a 4 KiB receive buffer and never read, while 1 GiB is written in 64 KiB entries
//! into a 1 MiB ring. Each stream is a position in the ring, so the server holds one batch per
//! stream (plus what hyper queues for the socket), not a queue of entries: its memory stays
//! bounded and flat however much is written.
//!
//! Alone in its test binary, so that no other test's memory is counted.
#![cfg(target_os = "linux")]

mod common;

/// The bound the server's resident memory must stay under, in bytes.
const BOUND: u64 = 400 << 20;

#[test]
fn a_thousand_clients_that_never_read_keep_the_server_under_400_mb_and_flat() {
    let mut entry = vec![b'x'; 64 * 1024 - 1];
    entry.push(b'\n');
    common::stalled::a_thousand_stalled_clients("/events", &entry, BOUND);
}
