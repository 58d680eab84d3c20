//! Opening a file to append to, so that a path that is not a regular file neither blocks nor
//! misleads: the panic dump's file and `FilePublisher`'s.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` for appending, creating it if need be, and never waits: on unix it is opened
/// non-blocking, so that a FIFO nobody reads (which a plain open waits for, forever) is an error
/// at once, and anything that is not a regular file (a FIFO, a device, a socket) is refused
/// with an error that says what it is.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) => {
            // ENXIO: a FIFO with no reader. Say what the path is rather than "no such device".
            return Err(match std::fs::metadata(path) {
                Ok(metadata) if !metadata.is_file() => not_regular(path, &metadata),
                _ => error,
            });
        }
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(path, &metadata));
    }
    Ok(file)
}

fn not_regular(path: &Path, metadata: &std::fs::Metadata) -> io::Error {
    let kind = kind(metadata);
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {kind}, not a regular file: memtail appends to regular files only",
            path.display()
        ),
    )
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    "not a regular file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_nobody_reads_and_a_device_are_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("memtail-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let error = open_append(&fifo).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(
            error.to_string().contains("is a FIFO, not a regular file"),
            "{error}"
        );
        let error = open_append(Path::new("/dev/null")).unwrap_err();
        assert!(error.to_string().contains("is a device"), "{error}");
        let error = open_append(&dir).unwrap_err();
        assert!(!error.to_string().is_empty());
        let file = dir.join("app.log");
        open_append(&file).unwrap();
        assert!(file.is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
