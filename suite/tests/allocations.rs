//! An event through memtail's tracing layer allocates nothing once the thread has logged one of
//! its size and the ring has gone round: counted by a counting allocator on this thread.

use memtail::LogBuffer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

#[test]
fn an_event_through_the_layer_allocates_nothing_in_steady_state() {
    // The counter counts: a Vec's first element is one allocation.
    let counted = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8]);
    });
    assert_eq!(counted.count_total, 1);

    // Small, so that it evicts many times while warming up.
    let buf = LogBuffer::with_capacity(64 * 1024);
    let subscriber =
        tracing_subscriber::registry().with(buf.layer().with_filter(LevelFilter::DEBUG));
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("request", id = 42, path = "/users");
        let _request = request.enter();
        let inner = tracing::debug_span!("db", table = "users");
        let _inner = inner.enter();
        let event = |i: u64| {
            tracing::debug!(target: "my_app::db", user = "ada", n = i, "handled request");
            tracing::trace!(target: "my_app::db", n = i, "filtered out");
        };
        // Warm up: the thread's scratch buffer, the interned target, the ring's storage and
        // index at their steady sizes.
        for i in 0..20_000 {
            event(i);
        }
        let evictions_before = buf.stats().entries_evicted;
        let counted = allocation_counter::measure(|| {
            for i in 20_000..40_000 {
                event(i);
            }
        });
        assert!(
            buf.stats().entries_evicted > evictions_before,
            "the ring went round"
        );
        assert_eq!(counted.count_total, 0, "{counted:?}");
        // A new span does allocate (its fields are formatted once, here): the counter sees
        // the layer's work.
        let counted = allocation_counter::measure(|| {
            tracing::info_span!("another", id = 7).in_scope(|| event(0));
        });
        assert!(counted.count_total > 0, "{counted:?}");
    });
    let last = buf.entries().pop().unwrap();
    assert_eq!(
        &last[..],
        b"DEBUG request{id=42 path=\"/users\"}:db{table=\"users\"}:another{id=7}: my_app::db: \
          handled request user=\"ada\" n=0\n"
    );
}
