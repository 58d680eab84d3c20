//! The flight recorder's context on error, under two writer threads: each error is printed once
//! with exactly the entries before it (since the previous error), none twice.
#![cfg(feature = "publish")]

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use memtail::{Level, LogBuffer};
use parking_lot::Mutex;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_error_comes_with_the_entries_before_it_once() {
    const BEFORE: usize = 3;
    let buf = LogBuffer::with_capacity(4 << 20);
    let out = Shared::default();
    let printer = buf.on_error(Level::Error, BEFORE, out.clone());
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (buf, start) = (buf.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for n in 0..5000 {
                    // Errors now and then, at times two close together; plain writes too.
                    let (text, level) = match n % 61 {
                        0 | 2 => (format!("w{writer} error {n}\n"), Some(Level::Error)),
                        7 => (format!("w{writer} warn {n}\n"), Some(Level::Warn)),
                        9 => (format!("w{writer} plain {n}\n"), None),
                        _ => (format!("w{writer} debug {n}\n"), Some(Level::Debug)),
                    };
                    match level {
                        Some(level) => buf.append_level(text.as_bytes(), level),
                        None => buf.append(text.as_bytes()),
                    };
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stats = printer.stop(Duration::from_secs(30));
    assert_eq!(stats.dropped(), 0, "{stats:?}");

    // What it should have printed, from the log as it is.
    let mut expected = String::new();
    let mut context: Vec<String> = Vec::new();
    let mut errors = 0;
    for entry in buf.entries() {
        let text = String::from_utf8(entry.to_vec()).unwrap();
        if entry.level() == Some(Level::Error) {
            errors += 1;
            expected.push_str(&format!(
                "--- memtail: entry {} is ERROR; the {} entries before it, then it ---\n",
                entry.seq(),
                context.len()
            ));
            for line in context.drain(..) {
                expected.push_str(&line);
            }
            expected.push_str(&text);
        } else {
            if context.len() == BEFORE {
                context.remove(0);
            }
            context.push(text);
        }
    }
    assert_eq!(errors, 2 * 2 * 82);
    let printed = String::from_utf8(out.0.lock().clone()).unwrap();
    assert_eq!(printed, expected);
}
