//! What a `tracing` event costs before and including memtail, with memtail's own layer beside
//! `fmt()`, each group read in one run.
//!
//! `cargo bench -p memtail-suite --features tracing --bench event`. The event is
//! `tracing::debug!(user = "ada", n = i, "handled request")` inside
//! `info_span!("request", id = 42, path = "/users")`: two fields in a span with two fields.
//! - `debug_in_span`: through `tracing_subscriber::fmt()` with its defaults (a time, colours; only
//!   the maximum level raised to DEBUG) into `io::sink` and into memtail, and through memtail's
//!   layer (which records a time too, with `SystemTime::now`).
//! - `debug_filtered_out`: the same event when nobody wants DEBUG: `fmt()` at INFO, and memtail's
//!   layer behind a per-layer INFO filter.

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, Criterion};
use memtail::LogBuffer;
use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// The measured event, in the span `run` enters once.
fn event(i: u64) {
    tracing::debug!(user = "ada", n = black_box(i), "handled request");
}

/// Times `event` under `dispatch`, inside the span.
fn bench(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    dispatch: Dispatch,
) {
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", id = 42, path = "/users");
        let _entered = span.enter();
        let mut i = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                event(i)
            })
        });
    });
}

fn fmt_defaults<W>(writer: W, level: tracing::Level) -> Dispatch
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(writer)
            .finish(),
    )
}

fn debug_in_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("debug_in_span");
    bench(
        &mut group,
        "fmt_defaults_into_sink",
        fmt_defaults(io::sink, tracing::Level::DEBUG),
    );
    let buf = LogBuffer::with_capacity(1 << 20);
    bench(
        &mut group,
        "fmt_defaults_into_memtail",
        fmt_defaults(buf.clone(), tracing::Level::DEBUG),
    );
    let buf = LogBuffer::with_capacity(1 << 20);
    bench(
        &mut group,
        "memtail_layer",
        Dispatch::new(tracing_subscriber::registry().with(buf.layer())),
    );
    // What the layer wrote, once, so that a run shows it measured what it says.
    if let Some(entry) = buf.entries().pop() {
        eprintln!(
            "memtail_layer wrote: {}",
            entry.rendered().to_string().trim_end()
        );
    }
    group.finish();
}

fn debug_filtered_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("debug_filtered_out");
    bench(
        &mut group,
        "fmt_at_info",
        fmt_defaults(io::sink, tracing::Level::INFO),
    );
    let buf = LogBuffer::with_capacity(1 << 20);
    bench(
        &mut group,
        "memtail_layer_at_info",
        Dispatch::new(
            tracing_subscriber::registry().with(buf.layer().with_filter(LevelFilter::INFO)),
        ),
    );
    assert!(buf.is_empty(), "nothing passed the filter");
    group.finish();
}

criterion_group!(benches, debug_in_span, debug_filtered_out);
criterion_main!(benches);
