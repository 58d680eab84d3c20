//! The `log` crate, without env_logger: every record from DEBUG up in memory, with its level,
//! target and time; on standard error, what `RUST_LOG` asks for (INFO when it is not set). At the
//! end, the program prints what memory holds, as people read it.
//!
//! Run it with `cargo run --example log --features log`.

fn main() -> Result<(), memtail::log::Error> {
    let buf = memtail::LogBuffer::with_capacity(1 << 20);
    memtail::log::Builder::new(&buf)
        .filter("debug")
        .stderr_from_env("RUST_LOG", "info")
        .init()?;

    log::debug!(target: "my_app::db", "query done rows=3");
    log::info!(target: "my_app::api", "logged in user=ada");
    log::warn!(target: "my_app", "disk almost full disk=93%");

    println!("--- memory holds {} entries:", buf.stats().retained_entries);
    for entry in buf.entries() {
        print!("{}", entry.rendered());
    }
    Ok(())
}
