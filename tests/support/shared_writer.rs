//! A writer whose bytes a test reads afterwards: its clones write to one buffer, so one goes to
//! the code under test and the test keeps another.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

/// The bytes written so far are in `.0`.
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
