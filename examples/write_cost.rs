//! The writer's cost in instructions, for `valgrind --tool=callgrind` (steadier than times on a
//! shared machine): N 100-byte `append`s through a function kept out of line, with S stalled
//! subscribers. Run it twice with different N; the difference divided by the difference in N is
//! the cost of one write, without the set-up:
//!
//! ```sh
//! cargo build --release --example write_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/write_cost 1000000 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/write_cost 2000000 0
//! ```
//!
//! Arguments: N (default 1 000 000) and S (default 0).

use std::hint::black_box;

#[inline(never)]
fn write(buf: &memtail::LogBuffer, line: &[u8]) {
    black_box(buf.append(line));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let writes: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let stalled: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let buf = memtail::LogBuffer::builder()
        .capacity(1 << 20)
        .subscriber_capacity(1)
        .build();
    let subscriptions: Vec<_> = (0..stalled).map(|_| buf.events()).collect();
    let line = [b'x'; 100];
    for _ in 0..writes {
        write(&buf, black_box(&line));
    }
    println!(
        "{writes} writes, {stalled} stalled subscribers, {} retained, {} dropped",
        buf.len(),
        buf.stats().subscriber_drops
    );
    drop(subscriptions);
}
