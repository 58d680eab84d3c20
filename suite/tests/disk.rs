//! `FilePublisher` on a full disk: a 64 KiB tmpfs fills while entries are published, and the file
//! holds only whole entries, in order, every one of them accounted for.
//!
//! Mounting a tmpfs needs root. Without it the test is reported as ignored, with the reason,
//! unless `MEMTAIL_REQUIRE_TMPFS` is set (as in CI): then it fails.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use memtail::publish::FilePublisher;
use memtail::LogBuffer;
use memtail_suite::{system_test, Missing};

fn main() {
    memtail_suite::run(vec![system_test(
        "a_full_disk_leaves_only_whole_entries_in_the_file",
        tmpfs,
        a_full_disk_leaves_only_whole_entries_in_the_file,
    )]);
}

/// A 64 KiB tmpfs mounted for the test; unmounted and removed when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn tmpfs() -> Result<Tmpfs, Missing> {
    let dir = std::env::temp_dir().join(format!("memtail-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| Missing {
        reason: format!("cannot make {}: {error}", dir.display()),
        require: "MEMTAIL_REQUIRE_TMPFS",
    })?;
    let output = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => Ok(Tmpfs(dir)),
        failed => {
            let _ = std::fs::remove_dir(&dir);
            let why = match failed {
                Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                Err(error) => error.to_string(),
            };
            Err(Missing {
                reason: format!("cannot mount a tmpfs here (it needs root): {why}"),
                require: "MEMTAIL_REQUIRE_TMPFS",
            })
        }
    }
}

fn a_full_disk_leaves_only_whole_entries_in_the_file(disk: Tmpfs) {
    let path = disk.0.join("out.log");
    let buf = LogBuffer::with_capacity(1 << 20);
    let handle = buf
        .publisher(FilePublisher::new(&path).unwrap())
        .interval(Duration::from_millis(5))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .max_attempts(3)
        .start();
    // 137-byte entries: 64 KiB fills part-way into one of them.
    const ENTRIES: u64 = 1000;
    for n in 0..ENTRIES {
        buf.append(format!("entry {n:06} {}\n", "x".repeat(123)).as_bytes());
    }
    // Bounded: the publisher fails on the full disk and, after its attempts, drops and counts.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while handle.stats().dropped() + handle.stats().delivered < ENTRIES {
        assert!(std::time::Instant::now() < deadline, "{:?}", handle.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = handle.stop(Duration::from_secs(10));
    assert!(stats.failed_attempts > 0, "the disk filled: {stats:?}");
    assert_eq!(stats.delivered + stats.dropped(), ENTRIES, "{stats:?}");

    let text = std::fs::read(&path).unwrap();
    assert!(
        text.len() > 60 * 1024,
        "the file filled the disk: {}",
        text.len()
    );
    assert!(text.ends_with(b"\n"), "the file ends with a whole entry");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let expected = format!("entry {n:06} {}", "x".repeat(123));
        assert_eq!(
            *line,
            expected.as_bytes(),
            "line {n} is whole, in order, once"
        );
    }
    assert_eq!(lines.len() as u64, stats.delivered, "{stats:?}");
}
