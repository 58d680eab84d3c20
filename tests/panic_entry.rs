//! A panic is an ERROR entry that followers and the on-error printer see. Alone in its test
//! binary: a panic hook is the process's, and another test's panic would be appended too.

use std::time::Duration;

use memtail::{Level, LogBuffer};

#[path = "support/shared_writer.rs"]
mod shared_writer;
use shared_writer::Shared;

#[test]
fn a_panic_is_an_error_entry_that_followers_and_the_printer_see() {
    let buf = LogBuffer::with_capacity(1 << 20);
    let live = buf.events();
    let out = Shared::default();
    let printer = buf.on_error(Level::Error, 5, out.clone());
    buf.append_level(b"accepted the upload\n", Level::Info);
    memtail::PanicHook::new(&buf).install();
    let caught = std::thread::Builder::new()
        .name("uploader".into())
        .spawn(|| panic!("disk quota exceeded\x1b[2J"))
        .unwrap()
        .join();
    assert!(caught.is_err());
    assert_eq!(&live.recv().unwrap()[..], b"accepted the upload\n");
    let panic = live.recv_timeout(Duration::from_secs(30)).unwrap();
    let text = String::from_utf8(panic.to_vec()).unwrap();
    assert!(
        text.starts_with("ERROR panic: thread 'uploader' panicked at tests/panic_entry.rs:"),
        "{text}"
    );
    // A terminal escape in the message is written escaped.
    assert!(text.ends_with(": disk quota exceeded\\x1b[2J\n"), "{text}");
    assert_eq!(panic.level(), Some(Level::Error));
    assert_eq!(panic.target(), Some("panic"));
    assert!(panic.time().is_some());
    // The printer saw it as an error, with the entry before it.
    let stats = printer.stop(Duration::from_secs(10));
    assert_eq!(stats.printed, 1);
    let printed = String::from_utf8(out.0.lock().clone()).unwrap();
    assert!(
        printed
            .starts_with("--- memtail: entry 1 is ERROR; the 1 entries before it, then it ---\n"),
        "{printed}"
    );
    assert!(printed.contains("accepted the upload\n"), "{printed}");
    assert!(
        printed.ends_with(": disk quota exceeded\\x1b[2J\n"),
        "{printed}"
    );
}
