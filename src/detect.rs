//! Telling a line's level from its text, for lines that come without one (a followed file).

use crate::render::skip_space_and_colours;
use crate::Level;

/// How far into a line a level is looked for, in bytes (beyond a JSON object's, which is looked
/// for anywhere in the object).
const LOOK: usize = 120;

/// How many words from the start a level word may be.
const WORDS: usize = 6;

impl Level {
    /// The level a log line's text shows, in the formats people have; `None` when it shows none
    /// (a stack trace's continuation line, a plain message). Looked for, in this order:
    ///
    /// - syslog's `<PRI>` at the start: its severity (`<11>`: error; 0 to 3 are errors, 4 a
    ///   warning, 5 and 6 information, 7 debug);
    /// - a JSON object's `"level"` or `"severity"`, a name or a number (bunyan's and pino's
    ///   10 to 60);
    /// - logfmt's `level=`, `lvl=` or `severity=` among the first words;
    /// - glog and klog's prefix, a letter and the date: `I1204`, `W1204`, `E1204`, `F1204`;
    /// - a level's name among the first words (after any time, host or thread): in capitals
    ///   (`INFO`, `WARN`, `WARNING`, `ERROR`, `DEBUG`, `TRACE`, and `FATAL`, `CRITICAL`,
    ///   `SEVERE` as errors, `NOTICE` as information), or in any case when it is set apart as
    ///   a level is: in brackets (`[error]`, `<warn>`) or followed by a colon (`warning:`).
    ///
    /// Colour codes (`\x1b[32m`) are looked through. A word in the message itself ("Info about
    /// the user", "error count: 0") is not taken for a level.
    ///
    /// # Examples
    ///
    /// ```
    /// use memtail::Level;
    ///
    /// assert_eq!(Level::detect(b"2026-12-04T14:39:53Z  WARN my_app: disk 91% full"), Some(Level::Warn));
    /// assert_eq!(Level::detect(b"2026/12/04 14:39:53 [error] 1234#0: *1 connect() failed"), Some(Level::Error));
    /// assert_eq!(Level::detect(br#"{"time":"...","level":"DEBUG","msg":"cache miss"}"#), Some(Level::Debug));
    /// assert_eq!(Level::detect(b"time=2026-12-04T14:39:53Z level=info msg=ready"), Some(Level::Info));
    /// assert_eq!(Level::detect(b"E1204 14:39:53.123456 1 pod.go:42] sync failed"), Some(Level::Error));
    /// assert_eq!(Level::detect(b"<12>1 2026-12-04T14:39:53Z host app - - - low disk"), Some(Level::Warn));
    /// assert_eq!(Level::detect(b"    at com.example.Main.run(Main.java:42)"), None);
    /// assert_eq!(Level::detect(b"Info about the user was updated"), None);
    /// ```
    pub fn detect(line: &[u8]) -> Option<Level> {
        let line = skip_space_and_colours(line);
        if let Some(level) = syslog_pri(line) {
            return Some(level);
        }
        if line.first() == Some(&b'{') {
            return json_level(line);
        }
        let head = &line[..line.len().min(LOOK)];
        if let Some(level) = klog(head) {
            return Some(level);
        }
        words(head)
    }
}

/// `<PRI>` at the start: the severity in its low three bits.
fn syslog_pri(line: &[u8]) -> Option<Level> {
    let rest = line.strip_prefix(b"<")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let pri: u32 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    if pri > 191 {
        return None;
    }
    Some(match pri % 8 {
        0..=3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    })
}

/// A JSON object's `"level"` or `"severity"`: a name, or a bunyan/pino number.
fn json_level(line: &[u8]) -> Option<Level> {
    for key in [&b"\"level\""[..], b"\"severity\"", b"\"lvl\""] {
        let Some(at) = find(line, key) else {
            continue;
        };
        let rest = skip_space_and_colours(&line[at + key.len()..]);
        let rest = skip_space_and_colours(rest.strip_prefix(b":")?);
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let end = quoted.iter().position(|&b| b == b'"')?;
            return name(&quoted[..end]);
        }
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let number: u32 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        return match number {
            10 => Some(Level::Trace),
            20 => Some(Level::Debug),
            30 => Some(Level::Info),
            40 => Some(Level::Warn),
            50 | 60 => Some(Level::Error),
            _ => None,
        };
    }
    None
}

/// glog and klog: `Lmmdd hh:mm:ss.uuuuuu`, L one of I, W, E, F.
fn klog(line: &[u8]) -> Option<Level> {
    let (&letter, rest) = line.split_first()?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 4 || rest.get(4) != Some(&b' ') || !rest.get(5).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    match letter {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' | b'F' => Some(Level::Error),
        _ => None,
    }
}

/// A level among the first words: logfmt's `level=NAME`, a name in capitals, or a name set
/// apart by brackets or a colon.
fn words(head: &[u8]) -> Option<Level> {
    let mut rest = head;
    for _ in 0..WORDS {
        rest = skip_space_and_colours(rest);
        if rest.is_empty() {
            return None;
        }
        let len = rest
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(rest.len());
        let word = trim_codes(&rest[..len]);
        if let Some(level) = word_level(word) {
            return Some(level);
        }
        rest = &rest[len..];
    }
    None
}

/// A word without colour codes at its end (`INFO\x1b[0m`).
fn trim_codes(word: &[u8]) -> &[u8] {
    match find(word, b"\x1b[") {
        Some(at) => &word[..at],
        None => word,
    }
}

/// The level one word shows, if it is one.
fn word_level(word: &[u8]) -> Option<Level> {
    for key in [&b"level="[..], b"lvl=", b"severity="] {
        if let Some(value) = strip_prefix_ignore_case(word, key) {
            let value = value.strip_prefix(b"\"").unwrap_or(value);
            let end = value
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .unwrap_or(value.len());
            return name(&value[..end]);
        }
    }
    // Set apart: `[error]`, `<warn>`, `(INFO)`, `warning:`, `[INFO ` (env_logger, up to the
    // word's end), `INFO:root:` (Python's default).
    let (open, inner) = match word.first() {
        Some(b'[' | b'<' | b'(') => (true, &word[1..]),
        _ => (false, word),
    };
    let end = inner
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(inner.len());
    if end == 0 {
        return None;
    }
    let (letters, after) = inner.split_at(end);
    let closed = matches!(after.first(), Some(b']' | b'>' | b')' | b':'));
    // A word in capitals needs nothing more; any other case must be set apart.
    let capitals = letters.iter().all(u8::is_ascii_uppercase);
    if !(open || closed || (capitals && after.is_empty())) {
        return None;
    }
    name(letters)
}

/// A level's name, in any case.
fn name(text: &[u8]) -> Option<Level> {
    let names: [(&[u8], Level); 19] = [
        (b"trace", Level::Trace),
        (b"debug", Level::Debug),
        (b"dbg", Level::Debug),
        // log15's.
        (b"dbug", Level::Debug),
        (b"eror", Level::Error),
        (b"info", Level::Info),
        (b"information", Level::Info),
        (b"notice", Level::Info),
        (b"warn", Level::Warn),
        (b"warning", Level::Warn),
        (b"error", Level::Error),
        (b"err", Level::Error),
        (b"fatal", Level::Error),
        (b"critical", Level::Error),
        (b"crit", Level::Error),
        (b"severe", Level::Error),
        (b"alert", Level::Error),
        (b"emerg", Level::Error),
        (b"panic", Level::Error),
    ];
    names
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(text))
        .map(|&(_, level)| level)
}

fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of the formats people have, with the level a person would give each.
    const CORPUS: &[(&str, Option<Level>)] = &[
        // tracing's fmt(), with and without colours.
        ("2026-12-04T14:39:53.123456Z  INFO my_app: listening on 8080", Some(Level::Info)),
        ("2026-12-04T14:39:53.123456Z DEBUG request{id=42}: my_app::db: query done rows=3", Some(Level::Debug)),
        ("\x1b[2m2026-12-04T14:39:53.123456Z\x1b[0m \x1b[33m WARN\x1b[0m \x1b[2mmy_app\x1b[0m\x1b[2m:\x1b[0m slow", Some(Level::Warn)),
        ("2026-12-04T14:39:53.123456Z ERROR my_app: payment failed", Some(Level::Error)),
        ("2026-12-04T14:39:53.123456Z TRACE my_app: polling", Some(Level::Trace)),
        // memtail's own layer.
        ("INFO  my_app: ready", Some(Level::Info)),
        // env_logger.
        ("[2026-12-04T14:39:53Z INFO  my_app] started", Some(Level::Info)),
        ("[2026-12-04T14:39:53Z ERROR my_app::db] connection lost", Some(Level::Error)),
        ("[2026-12-04T14:39:53Z WARN  my_app] retrying", Some(Level::Warn)),
        // logback / log4j.
        ("14:39:53.123 [main] INFO  com.example.App - Started App in 2.1 seconds", Some(Level::Info)),
        ("2026-12-04 14:39:53,123 ERROR [http-nio-8080-exec-1] c.e.Controller - request failed", Some(Level::Error)),
        ("2026-12-04 14:39:53.123  WARN 4242 --- [           main] o.s.b.StartupInfoLogger : slow", Some(Level::Warn)),
        ("java.lang.IllegalStateException: boom", None),
        ("\tat com.example.App.main(App.java:42)", None),
        ("\t... 12 more", None),
        // Python logging.
        ("WARNING:root:disk almost full", Some(Level::Warn)),
        ("2026-12-04 14:39:53,123 - my_app - ERROR - something broke", Some(Level::Error)),
        ("2026-12-04 14:39:53,123 INFO my_app: started", Some(Level::Info)),
        ("CRITICAL:my_app:out of memory", Some(Level::Error)),
        ("Traceback (most recent call last):", None),
        ("  File \"app.py\", line 3, in <module>", None),
        ("ValueError: invalid literal for int() with base 10: 'x'", None),
        // nginx error log (and an access log line, which has no level).
        ("2026/12/04 14:39:53 [error] 1234#0: *5 connect() failed (111: Connection refused)", Some(Level::Error)),
        ("2026/12/04 14:39:53 [warn] 1234#0: *6 an upstream response is buffered", Some(Level::Warn)),
        ("2026/12/04 14:39:53 [notice] 1234#0: signal process started", Some(Level::Info)),
        ("127.0.0.1 - - [04/Dec/2026:14:39:53 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"curl/8.0\"", None),
        // Go slog, text and JSON; log15 and logrus.
        ("time=2026-12-04T14:39:53.123Z level=INFO msg=\"server started\" port=8080", Some(Level::Info)),
        ("time=2026-12-04T14:39:53.123Z level=WARN msg=slow", Some(Level::Warn)),
        ("{\"time\":\"2026-12-04T14:39:53.123Z\",\"level\":\"ERROR\",\"msg\":\"failed\"}", Some(Level::Error)),
        ("{\"time\":\"2026-12-04T14:39:53.123Z\",\"level\":\"DEBUG\",\"msg\":\"detail\"}", Some(Level::Debug)),
        ("t=2026-12-04T14:39:53+0000 lvl=dbug msg=x", Some(Level::Debug)),
        ("t=2026-12-04T14:39:53+0000 lvl=info msg=\"ready\"", Some(Level::Info)),
        ("time=\"2026-12-04T14:39:53Z\" level=warning msg=\"low disk\"", Some(Level::Warn)),
        // pino and bunyan.
        ("{\"level\":30,\"time\":1764859193123,\"msg\":\"hello\"}", Some(Level::Info)),
        ("{\"level\":50,\"time\":1764859193123,\"msg\":\"failed\"}", Some(Level::Error)),
        ("{\"severity\":\"WARNING\",\"message\":\"quota\"}", Some(Level::Warn)),
        ("{\"msg\":\"no level here\"}", None),
        // klog and glog.
        ("I1204 14:39:53.123456       1 server.go:42] Serving on :8080", Some(Level::Info)),
        ("W1204 14:39:53.123456       1 reflector.go:324] watch ended", Some(Level::Warn)),
        ("E1204 14:39:53.123456       1 pod.go:42] sync failed", Some(Level::Error)),
        ("F1204 14:39:53.123456       1 main.go:10] cannot start", Some(Level::Error)),
        // syslog.
        ("<11>1 2026-12-04T14:39:53Z host app 42 - - disk failed", Some(Level::Error)),
        ("<30>Dec  4 14:39:53 app[42]: started", Some(Level::Info)),
        ("<15>Dec  4 14:39:53 app[42]: detail", Some(Level::Debug)),
        // Lines with no level, and words that are not one.
        ("Info about the user was updated", None),
        ("error count: 0 in the last hour", None),
        ("the warning light is off", None),
        ("Server started in 2.1 s", None),
        ("", None),
        ("    ", None),
        ("user=ada action=login ok=true", None),
    ];

    #[test]
    fn the_corpus_gets_the_levels_a_person_would_give() {
        let mut wrong = Vec::new();
        for &(line, expected) in CORPUS {
            let got = Level::detect(line.as_bytes());
            if got != expected {
                wrong.push(format!("{line:?}: {got:?}, not {expected:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn hostile_bytes_give_no_panic() {
        for line in [
            &b"<"[..],
            b"<999999999999999999999>",
            b"{\"level\":",
            b"{\"level\":\"",
            b"{\"level\":99999999999999999999}",
            b"\x1b[",
            b"\x1b[31",
            b"[",
            b"I1204",
            b"\xff\xfe level=\xff",
        ] {
            let _ = Level::detect(line);
        }
    }
}
