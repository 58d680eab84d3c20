//! Publishers that write entries as they are: to any `io::Write`, or appended to a file.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::publisher::{PublishError, Publisher};
use crate::Entry;

/// Writes each batch's entries, as they are, to an [`io::Write`]: stderr, a socket, a `Vec`.
///
/// A batch goes out in as few `write` calls as the writer allows. When a write fails, the entries
/// written whole before it count as delivered; an entry cut by the failure is offered again whole.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use memtail::publish::WriterPublisher;
///
/// let buf = memtail::LogBuffer::new();
/// let handle = buf.publish(WriterPublisher::new(std::io::stderr()));
/// buf.append(b"to stderr, in the background\n");
/// assert_eq!(handle.stop(Duration::from_secs(5)).delivered, 1);
/// ```
pub struct WriterPublisher<W> {
    writer: W,
    scratch: Vec<u8>,
}

impl<W: Write + Send + 'static> WriterPublisher<W> {
    /// A publisher that writes to `writer`.
    pub fn new(writer: W) -> WriterPublisher<W> {
        WriterPublisher {
            writer,
            scratch: Vec::new(),
        }
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }
}

impl<W: Write + Send + 'static> Publisher for WriterPublisher<W> {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        write_batch(&mut self.writer, batch, &mut self.scratch)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl<W> fmt::Debug for WriterPublisher<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("WriterPublisher { .. }")
    }
}

/// Writes the batch as one buffer and maps a failure back to how many entries got out whole.
pub(super) fn write_batch(
    writer: &mut impl Write,
    batch: &[Entry],
    scratch: &mut Vec<u8>,
) -> Result<usize, PublishError> {
    scratch.clear();
    let mut ends = Vec::with_capacity(batch.len());
    for entry in batch {
        scratch.extend_from_slice(entry);
        ends.push(scratch.len());
    }
    write_counted(writer, scratch, &ends)
}

/// Writes `bytes`, the concatenation of entries ending at the offsets `ends`; on failure, says how
/// many of them got out whole.
pub(super) fn write_counted(
    writer: &mut impl Write,
    bytes: &[u8],
    ends: &[usize],
) -> Result<usize, PublishError> {
    let mut written = 0;
    while written < bytes.len() {
        let error = match writer.write(&bytes[written..]) {
            Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => {
                written += n;
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => error,
        };
        let whole = ends.iter().take_while(|&&end| end <= written).count();
        return Err(PublishError::new(error).with_delivered(whole));
    }
    Ok(ends.len())
}

/// Appends entries to a file, and opens the file anew when it was rotated away.
///
/// Before each batch the publisher checks that the path still names the file it has open (same
/// device and inode, on Unix); when a log rotator renamed or deleted it, the publisher creates the
/// file at the path again and writes there, so nothing goes to a file nobody reads. With
/// [`fsync`](FilePublisher::fsync), the file is synced to disk after each round of batches; a
/// failed sync is reported as the publisher's last error (the entries were written, and count as
/// delivered).
///
/// The file only ever holds whole entries: when a write fails part-way (a full disk, a file size
/// limit), the publisher cuts the file back to the end of the last whole entry (`set_len`) before
/// it reports the failure. The entries before count as delivered; the rest are retried like any
/// failed batch. This assumes the publisher is the file's only writer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use memtail::publish::FilePublisher;
///
/// let path = std::env::temp_dir().join(format!("memtail-doc-{}.log", std::process::id()));
/// let buf = memtail::LogBuffer::new();
/// let handle = buf.publish(FilePublisher::new(&path)?.fsync(true));
/// buf.append(b"persisted\n");
/// handle.stop(Duration::from_secs(5));
/// assert_eq!(std::fs::read(&path)?, b"persisted\n");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FilePublisher {
    path: PathBuf,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    fsync: bool,
    scratch: Vec<u8>,
}

impl FilePublisher {
    /// A publisher that appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened for appending (a missing directory, no permission).
    pub fn new(path: impl AsRef<Path>) -> io::Result<FilePublisher> {
        let mut publisher = FilePublisher {
            path: path.as_ref().to_path_buf(),
            file: None,
            identity: None,
            fsync: false,
            scratch: Vec::new(),
        };
        publisher.open()?;
        Ok(publisher)
    }

    /// Whether to sync the file to disk (`fdatasync`) after each round of batches. Off by default.
    pub fn fsync(mut self, fsync: bool) -> FilePublisher {
        self.fsync = fsync;
        self
    }

    /// The path written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<&mut File> {
        let file = crate::file::open_append(&self.path).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot open {}: {error}", self.path.display()),
            )
        })?;
        self.identity = identity(&file.metadata()?);
        Ok(self.file.insert(file))
    }

    /// The open file, opened again if the path no longer names it.
    fn file(&mut self) -> io::Result<&mut File> {
        let current = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| identity(&m));
        let rotated = self.identity.is_some() && current != self.identity;
        match self.file.take() {
            Some(file) if !rotated => Ok(self.file.insert(file)),
            _ => self.open(),
        }
    }
}

/// A file that can be cut back to a length: what [`write_whole`] needs besides `Write`.
trait CutBack: Write {
    fn length(&self) -> io::Result<u64>;
    fn cut_back(&self, length: u64) -> io::Result<()>;
}

impl CutBack for File {
    fn length(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn cut_back(&self, length: u64) -> io::Result<()> {
        self.set_len(length)
    }
}

/// [`write_batch`], then, if it failed part-way into an entry, cuts the file back to the end of
/// the last whole entry, so that what follows starts on a fresh entry.
fn write_whole(
    file: &mut impl CutBack,
    batch: &[Entry],
    scratch: &mut Vec<u8>,
) -> Result<usize, PublishError> {
    let start = file.length()?;
    write_batch(file, batch, scratch).map_err(|error| {
        let whole = error.delivered();
        let end = start + batch[..whole].iter().map(|e| e.len() as u64).sum::<u64>();
        match file.length() {
            Ok(length) if length == end => error,
            _ => match file.cut_back(end) {
                Ok(()) => error,
                Err(cut) => PublishError::new(io::Error::new(
                    cut.kind(),
                    format!(
                        "{}; and cutting the file back to its last whole entry failed: {cut}",
                        error.io_error()
                    ),
                ))
                .with_delivered(whole),
            },
        }
    })
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl Publisher for FilePublisher {
    fn publish(&mut self, batch: &[Entry]) -> Result<usize, PublishError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self
            .file()
            .map_err(PublishError::from)
            .and_then(|file| write_whole(file, batch, &mut scratch));
        self.scratch = scratch;
        if result.is_err() {
            // Open it again next time: the error may have been the file's.
            self.file = None;
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) if self.fsync => file.sync_data(),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for FilePublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilePublisher")
            .field("path", &self.path)
            .field("fsync", &self.fsync)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entries(texts: &[&str]) -> Vec<Entry> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Entry::new(i as u64, Bytes::copy_from_slice(t.as_bytes()), None))
            .collect()
    }

    /// Accepts `limit` bytes, then fails.
    struct Limited {
        taken: Vec<u8>,
        limit: usize,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let room = self.limit - self.taken.len();
            if room == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(room).min(3);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A file in memory that takes `limit` bytes, then fails, and can be cut back.
    struct Disk {
        bytes: std::cell::RefCell<Vec<u8>>,
        limit: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.borrow_mut();
            let room = self.limit.saturating_sub(bytes.len());
            if room == 0 {
                // ENOSPC
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(room);
            bytes.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl CutBack for Disk {
        fn length(&self) -> io::Result<u64> {
            Ok(self.bytes.borrow().len() as u64)
        }

        fn cut_back(&self, length: u64) -> io::Result<()> {
            self.bytes.borrow_mut().truncate(length as usize);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_leaves_only_whole_entries_in_the_file() {
        let mut disk = Disk {
            bytes: std::cell::RefCell::new(b"old\n".to_vec()),
            limit: 12,
        };
        let batch = entries(&["aaaa\n", "bbbb\n", "cccc\n"]);
        let error = write_whole(&mut disk, &batch, &mut Vec::new()).unwrap_err();
        assert_eq!(error.delivered(), 1);
        assert_eq!(error.io_error().raw_os_error(), Some(28));
        assert_eq!(
            disk.bytes.borrow().as_slice(),
            b"old\naaaa\n",
            "no part of bbbb"
        );
        // Space again: the retry starts on a fresh entry.
        disk.limit = 100;
        assert_eq!(
            write_whole(&mut disk, &batch[1..], &mut Vec::new()).unwrap(),
            2
        );
        assert_eq!(disk.bytes.borrow().as_slice(), b"old\naaaa\nbbbb\ncccc\n");
    }

    #[test]
    fn a_failed_write_delivers_the_whole_entries_before_it() {
        let batch = entries(&["aaaa\n", "bbbb\n", "cccc\n"]);
        let mut writer = Limited {
            taken: Vec::new(),
            limit: 7,
        };
        let error = write_batch(&mut writer, &batch, &mut Vec::new()).unwrap_err();
        assert_eq!(error.delivered(), 1);
        assert_eq!(error.io_error().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(writer.taken, b"aaaa\nbb");
    }
}
