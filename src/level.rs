use std::fmt;

/// The level of the `tracing` event an [`Entry`](crate::Entry) came from.
///
/// Ordered by severity: `Trace < Debug < Info < Warn < Error`. Entries written through
/// `std::io::Write` have no level ([`Entry::level`](crate::Entry::level) is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very fine-grained detail.
    Trace,
    /// Information useful while debugging.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the program handled.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level's name in capitals, as `tracing` prints it (`"INFO"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    /// How many values [`encode`](Level::encode) gives: 0 to 5.
    pub(crate) const ENCODED: usize = 6;

    /// Packs an optional level into the ring's per-entry metadata byte (0 is "no level").
    pub(crate) fn encode(level: Option<Level>) -> u8 {
        match level {
            None => 0,
            Some(Level::Trace) => 1,
            Some(Level::Debug) => 2,
            Some(Level::Info) => 3,
            Some(Level::Warn) => 4,
            Some(Level::Error) => 5,
        }
    }

    pub(crate) fn decode(meta: u8) -> Option<Level> {
        match meta {
            1 => Some(Level::Trace),
            2 => Some(Level::Debug),
            3 => Some(Level::Info),
            4 => Some(Level::Warn),
            5 => Some(Level::Error),
            _ => None,
        }
    }
}

/// Reads a level's name, in any case: `trace`, `debug`, `info`, `warn` (or `warning`), `error`.
///
/// # Examples
///
/// ```
/// use memtail::Level;
///
/// assert_eq!("warn".parse::<Level>(), Ok(Level::Warn));
/// assert_eq!("ERROR".parse::<Level>(), Ok(Level::Error));
/// assert!("loud".parse::<Level>().is_err());
/// ```
impl std::str::FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(name: &str) -> Result<Level, ParseLevelError> {
        let levels = [
            ("trace", Level::Trace),
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("error", Level::Error),
        ];
        levels
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
            .map(|&(_, level)| level)
            .ok_or(ParseLevelError(()))
    }
}

/// The error of parsing a [`Level`] from a name it does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLevelError(());

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a level: expected trace, debug, info, warn or error")
    }
}

impl std::error::Error for ParseLevelError {}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(feature = "tracing")]
impl From<&tracing_core::Level> for Level {
    fn from(level: &tracing_core::Level) -> Level {
        match *level {
            tracing_core::Level::TRACE => Level::Trace,
            tracing_core::Level::DEBUG => Level::Debug,
            tracing_core::Level::INFO => Level::Info,
            tracing_core::Level::WARN => Level::Warn,
            _ => Level::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for level in [
            None,
            Some(Level::Trace),
            Some(Level::Debug),
            Some(Level::Info),
            Some(Level::Warn),
            Some(Level::Error),
        ] {
            assert_eq!(Level::decode(Level::encode(level)), level);
        }
        assert!(Level::Trace < Level::Error);
        assert_eq!(format!("{:<5}|", Level::Info), "INFO |");
    }
}
