//! The client side of RELP, rsyslog's Reliable Event Logging Protocol: a session over TCP in
//! which every `syslog` frame carries a transaction number and the server answers each with an
//! `rsp` frame, `200` when it has taken the message.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR from 1 to 999 999 999 (then 1
//! again), COMMAND a word, DATALEN the number of bytes of DATA (and no `SP DATA` when it is 0).
//! The session opens with an `open` frame offering `relp_version`, `relp_software` and
//! `commands=syslog`; the server answers `200 OK` with its own offers, which must include
//! `syslog`. The client ends it with `close`; the server may end it with `serverclose` (TXNR 0).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The highest transaction number; the next one is 1.
const MAX_TXNR: u32 = 999_999_999;
/// A session whose next transaction number is past this is closed and a new one opened.
const RENEW_AFTER: u32 = 990_000_000;
/// The most bytes of DATA this client reads in one frame from the server. Answers are a few
/// dozen bytes; a server that announces more is not speaking RELP.
const MAX_RESPONSE: usize = 64 * 1024;
/// How long closing a session may wait for the server's answer.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// A frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) txnr: u32,
    pub(super) command: String,
    pub(super) data: Vec<u8>,
}

impl Frame {
    /// The status code of an `rsp` frame (`200` for success).
    fn code(&self) -> Option<u16> {
        let code = self.data.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }

    /// The data, for error messages.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).trim_end().to_owned()
    }
}

/// What became of one `syslog` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Not answered (yet).
    Pending,
    /// Answered `200`: the server has it.
    Acked,
    /// Answered with another code: the server refused it.
    Refused,
}

/// How long the server may keep the client waiting: `timeout` without progress (bytes taken or
/// answers received) when `renewed`, or `timeout` in all otherwise.
pub(super) struct Patience {
    timeout: Duration,
    deadline: Instant,
    renewed: bool,
}

impl Patience {
    /// `timeout` without progress.
    pub(super) fn without_progress(timeout: Duration) -> Patience {
        Patience {
            timeout,
            deadline: Instant::now() + timeout,
            renewed: true,
        }
    }

    /// `timeout` in all.
    fn in_all(timeout: Duration) -> Patience {
        Patience {
            renewed: false,
            ..Patience::without_progress(timeout)
        }
    }

    fn progress(&mut self) {
        if self.renewed {
            self.deadline = Instant::now() + self.timeout;
        }
    }

    fn left(&self) -> io::Result<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(timed_out)
    }
}

/// An open RELP session.
pub(super) struct Session {
    stream: TcpStream,
    next_txnr: u32,
    /// Bytes received and not parsed yet.
    received: Vec<u8>,
    /// Frames to write, gathered so that a window of them goes out in few writes.
    out: Vec<u8>,
    /// Whether dropping the session sends `close` (not after an error: the connection is of no
    /// more use, and a stalled server would hold the publisher up).
    close_on_drop: bool,
}

/// An error that ends a session: the connection is dropped and made again next time.
fn broken(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, message.into())
}

impl Session {
    /// Connects to the first of `addrs` that answers and opens a session.
    pub(super) fn open(
        addrs: &[SocketAddr],
        connect_timeout: Duration,
        patience: &mut Patience,
    ) -> io::Result<Session> {
        let mut last = None;
        for addr in addrs {
            let timeout = patience.left()?.min(connect_timeout);
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let mut session = Session {
                        stream,
                        next_txnr: 1,
                        received: Vec::new(),
                        out: Vec::new(),
                        close_on_drop: false,
                    };
                    session.handshake(patience).map_err(|error| {
                        io::Error::new(
                            error.kind(),
                            format!("cannot open a RELP session with {addr}: {error}"),
                        )
                    })?;
                    session.close_on_drop = true;
                    return Ok(session);
                }
                Err(error) => {
                    last = Some(io::Error::new(
                        error.kind(),
                        format!("cannot connect to RELP at {addr}: {error}"),
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotConnected)))
    }

    fn handshake(&mut self, patience: &mut Patience) -> io::Result<()> {
        let offers = format!(
            "relp_version=0\nrelp_software=memtail,{},https://crates.io/crates/memtail\ncommands=syslog",
            env!("CARGO_PKG_VERSION")
        );
        let txnr = self.queue("open", offers.as_bytes());
        self.send(patience)?;
        let answer = self.read_frame(patience)?;
        if answer.command != "rsp" || answer.txnr != txnr {
            return Err(broken(
                io::ErrorKind::InvalidData,
                format!(
                    "the server answered `open` with `{} {}`",
                    answer.txnr, answer.command
                ),
            ));
        }
        if answer.code() != Some(200) {
            return Err(broken(
                io::ErrorKind::ConnectionRefused,
                format!("the server refused the session: {}", answer.text()),
            ));
        }
        let text = answer.text();
        let commands = text
            .lines()
            .find_map(|offer| offer.strip_prefix("commands="))
            .unwrap_or("");
        if !commands
            .split(',')
            .any(|command| command.trim() == "syslog")
        {
            return Err(broken(
                io::ErrorKind::Unsupported,
                format!("the server does not offer the `syslog` command: {text}"),
            ));
        }
        Ok(())
    }

    /// Whether the session can take a batch: the server has not closed the connection or sent
    /// anything (between batches it has nothing to say but `serverclose`), and the transaction
    /// numbers are far from their end (librelp's server wants them to follow each other, and
    /// does not agree with the protocol's description on what comes after 999 999 999: a new
    /// session starts again at 1).
    pub(super) fn still_open(&mut self) -> bool {
        if self.next_txnr > RENEW_AFTER || !self.received.is_empty() {
            return false;
        }
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let quiet = matches!(
            self.stream.peek(&mut byte),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock
        );
        self.stream.set_nonblocking(false).is_ok() && quiet
    }

    /// Adds a frame to what [`send`](Session::send) writes, and returns its transaction number.
    pub(super) fn queue(&mut self, command: &str, data: &[u8]) -> u32 {
        let txnr = self.next_txnr;
        self.next_txnr = if txnr == MAX_TXNR { 1 } else { txnr + 1 };
        let out = &mut self.out;
        out.extend_from_slice(txnr.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(command.as_bytes());
        out.push(b' ');
        out.extend_from_slice(data.len().to_string().as_bytes());
        if !data.is_empty() {
            out.push(b' ');
            out.extend_from_slice(data);
        }
        out.push(b'\n');
        txnr
    }

    /// Writes the queued frames.
    pub(super) fn send(&mut self, patience: &mut Patience) -> io::Result<()> {
        let mut written = 0;
        while written < self.out.len() {
            self.stream.set_write_timeout(Some(patience.left()?))?;
            match self.stream.write(&self.out[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    patience.progress();
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_timeout(&error) => return Err(timed_out()),
                Err(error) => return Err(error),
            }
        }
        self.out.clear();
        Ok(())
    }

    /// Reads the next frame from the server. Only a whole frame is progress: a server that
    /// drips an answer a byte at a time does not hold the patience off.
    pub(super) fn read_frame(&mut self, patience: &mut Patience) -> io::Result<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.received)? {
                self.received.drain(..used);
                patience.progress();
                return Ok(frame);
            }
            self.stream.set_read_timeout(Some(patience.left()?))?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(broken(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_timeout(&error) => return Err(timed_out()),
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends `messages` as `syslog` frames, at most `window` unanswered at a time, and waits for
    /// every answer. `outcomes[i]` says what became of `messages[i]`;
    /// messages whose outcome is already [`Outcome::Acked`] are not sent. An error means the
    /// session is broken (the server went away, sent what is not RELP, ended the session, or
    /// did not answer in time): what was answered before it is in `outcomes`.
    pub(super) fn exchange<'m>(
        &mut self,
        messages: impl Iterator<Item = &'m [u8]>,
        outcomes: &mut [Outcome],
        window: usize,
        patience: &mut Patience,
        mut on_send: impl FnMut(usize),
    ) -> io::Result<()> {
        let mut in_flight: VecDeque<(u32, usize)> =
            VecDeque::with_capacity(window.min(outcomes.len()));
        for (index, message) in messages.enumerate() {
            if outcomes[index] == Outcome::Acked {
                continue;
            }
            while in_flight.len() >= window {
                self.send(patience)?;
                self.answer(&mut in_flight, outcomes, patience)?;
            }
            let txnr = self.queue("syslog", message);
            in_flight.push_back((txnr, index));
            on_send(index);
        }
        self.send(patience)?;
        while !in_flight.is_empty() {
            self.answer(&mut in_flight, outcomes, patience)?;
        }
        Ok(())
    }

    /// Reads one answer to a frame in flight and records it.
    fn answer(
        &mut self,
        in_flight: &mut VecDeque<(u32, usize)>,
        outcomes: &mut [Outcome],
        patience: &mut Patience,
    ) -> io::Result<()> {
        let frame = self.read_frame(patience)?;
        match frame.command.as_str() {
            "rsp" => {
                let Some(at) = in_flight.iter().position(|&(txnr, _)| txnr == frame.txnr) else {
                    return Err(broken(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the server answered transaction {}, which is not in flight",
                            frame.txnr
                        ),
                    ));
                };
                let (_, index) = in_flight.remove(at).expect("position is in range");
                outcomes[index] = if frame.code() == Some(200) {
                    Outcome::Acked
                } else {
                    Outcome::Refused
                };
                Ok(())
            }
            "serverclose" => Err(broken(
                io::ErrorKind::ConnectionAborted,
                "the server ended the session (serverclose)",
            )),
            other => Err(broken(
                io::ErrorKind::InvalidData,
                format!("the server sent an unexpected `{other}` frame"),
            )),
        }
    }
}

impl Session {
    /// Drops a session that broke, without saying `close`.
    pub(super) fn abandon(mut self) {
        self.close_on_drop = false;
    }
}

impl Drop for Session {
    /// Ends a healthy session with `close`, waiting briefly for the answer.
    fn drop(&mut self) {
        if !self.close_on_drop {
            return;
        }
        self.out.clear();
        let patience = &mut Patience::in_all(CLOSE_WAIT);
        let txnr = self.queue("close", b"");
        if self.send(patience).is_ok() {
            while let Ok(frame) = self.read_frame(patience) {
                if frame.txnr == txnr || frame.command == "serverclose" {
                    break;
                }
            }
        }
    }
}

/// Parses one frame from the start of `bytes`: the frame and how many bytes it took, or `None`
/// when more bytes are needed.
pub(super) fn parse_frame(bytes: &[u8]) -> io::Result<Option<(Frame, usize)>> {
    let bad = |what: &str| {
        Err(broken(
            io::ErrorKind::InvalidData,
            format!("the server sent a malformed RELP frame ({what})"),
        ))
    };
    // TXNR SP COMMAND SP DATALEN: each field ends at the first SP (or, for DATALEN, LF).
    let mut fields = [(0usize, 0usize); 3];
    let mut at = 0;
    for (i, field) in fields.iter_mut().enumerate() {
        let limit = if i == 1 { 32 } else { 9 };
        let end = bytes[at..]
            .iter()
            .take(limit + 1)
            .position(|&b| b == b' ' || (i == 2 && b == b'\n'));
        match end {
            Some(0) => return bad("an empty field"),
            Some(len) => {
                *field = (at, at + len);
                at += len;
            }
            None if bytes.len() - at > limit => return bad("a field too long"),
            None => return Ok(None),
        }
        if i < 2 {
            at += 1; // the SP
        }
    }
    let number = |(start, end): (usize, usize)| -> Option<usize> {
        let digits = &bytes[start..end];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let Some(txnr) = number(fields[0]) else {
        return bad("TXNR is not a number");
    };
    let command = &bytes[fields[1].0..fields[1].1];
    if !command.iter().all(u8::is_ascii_alphabetic) {
        return bad("COMMAND is not a word");
    }
    let Some(len) = number(fields[2]) else {
        return bad("DATALEN is not a number");
    };
    if len > MAX_RESPONSE {
        return bad("DATALEN is too large for an answer");
    }
    // `at` is at the SP before DATA, or at the LF when DATALEN is 0.
    let data_start = if len == 0 { at } else { at + 1 };
    let trailer = data_start + len;
    if bytes.len() <= trailer {
        return Ok(None);
    }
    if len > 0 && bytes[at] != b' ' {
        return bad("no SP before DATA");
    }
    if bytes[trailer] != b'\n' {
        return bad("no LF after DATA");
    }
    let frame = Frame {
        txnr: txnr as u32,
        command: String::from_utf8_lossy(command).into_owned(),
        data: bytes[data_start..trailer].to_vec(),
    };
    Ok(Some((frame, trailer + 1)))
}

fn timed_out() -> io::Error {
    broken(
        io::ErrorKind::TimedOut,
        "the server took no bytes and sent no answer for the write timeout",
    )
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(txnr: u32, command: &str, data: &str) -> Frame {
        Frame {
            txnr,
            command: command.into(),
            data: data.into(),
        }
    }

    #[test]
    fn parses_frames_with_and_without_data() {
        assert_eq!(
            parse_frame(b"2 rsp 6 200 OK\n3 rsp").unwrap(),
            Some((frame(2, "rsp", "200 OK"), 15))
        );
        assert_eq!(
            parse_frame(b"0 serverclose 0\n").unwrap(),
            Some((frame(0, "serverclose", ""), 16))
        );
        let open = b"1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n";
        let (parsed, used) = parse_frame(open).unwrap().unwrap();
        assert_eq!(used, open.len());
        assert_eq!(parsed.code(), Some(200));
        assert!(parsed.text().ends_with("commands=syslog"));
    }

    #[test]
    fn waits_for_the_rest_of_a_frame() {
        for cut in [
            "",
            "2",
            "2 ",
            "2 rs",
            "2 rsp ",
            "2 rsp 6",
            "2 rsp 6 200 O",
            "2 rsp 6 200 OK",
        ] {
            assert_eq!(parse_frame(cut.as_bytes()).unwrap(), None, "{cut:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_relp() {
        for bad in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"x rsp 6 200 OK\n",
            b"2 rsp 6 200 OKAY\n",
            b"2 rsp 1000000 ",
            b"2 rsp -1 x\n",
            b"1234567890 rsp 0\n",
            b" rsp 0\n",
            b"2 r5p 0\n",
            b"2 rsp 2x\n",
        ] {
            assert!(
                parse_frame(bad).is_err(),
                "{:?}",
                bad.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn sessions_are_renewed_before_transaction_numbers_wrap() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut session = Session {
            stream,
            next_txnr: 2,
            received: Vec::new(),
            out: Vec::new(),
            close_on_drop: false,
        };
        assert!(session.still_open());
        session.next_txnr = RENEW_AFTER + 1;
        assert!(!session.still_open(), "renewed long before the end");
        session.next_txnr = MAX_TXNR;
        assert_eq!(session.queue("syslog", b"a"), MAX_TXNR);
        assert_eq!(session.queue("close", b""), 1);
        assert_eq!(session.out, b"999999999 syslog 1 a\n1 close 0\n");
    }
}
