//! The processes a test starts, and how long a test may run.
//!
//! [`Process`] is a guard: when it is dropped (the test passed, failed or panicked) it kills the
//! process and everything it started (its process group), and reaps it. [`with_deadline`] runs a
//! test's body with a time limit; past it, every guarded process is killed, which unblocks a body
//! waiting on one, and the test fails saying which limit it passed.
//!
//! Shared by the end-to-end tests of both workspace packages: `tests/cli.rs` here, and the
//! `memtail-suite` library (rsyslog, browser) through a `#[path]` module.
#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The guarded processes not yet reaped: the test (scope) that started each, and its process
/// group.
static LIVE: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The test running on this thread, set by [`with_deadline`] (0: none).
    static SCOPE: Cell<u64> = const { Cell::new(0) };
}

/// The test running on this thread, to hand to threads it starts (a runtime's workers) with
/// [`enter`], so that the processes they start belong to it.
pub fn scope() -> u64 {
    SCOPE.with(Cell::get)
}

/// Makes this thread's processes belong to `scope`, a value from [`scope`].
pub fn enter(scope: u64) {
    SCOPE.with(|current| current.set(scope));
}

/// How long a body that passed its deadline gets to wind down once its processes are killed.
const WIND_DOWN: Duration = Duration::from_secs(10);

fn live() -> MutexGuard<'static, Vec<(u64, u32)>> {
    // A test that panicked while holding the lock leaves the list as it was: still usable.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends `signal` to the process group `group` (and so to everything in it). Uses the shell's
/// `kill`, which every Unix has, because the standard library can only send SIGKILL to a child.
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} -- -{group} 2>/dev/null"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A process started by a test, in a process group of its own; killed with its group and reaped
/// when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: String,
    reaped: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` in a new process group. Panics, naming the program, if it cannot start.
    pub fn spawn(command: &mut Command) -> Process {
        let name = command.get_program().to_string_lossy().into_owned();
        command.process_group(0);
        // Registered under the lock so that a deadline cannot pass between start and register.
        let mut live = live();
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("{name} does not start: {error}"));
        live.push((scope(), child.id()));
        Process {
            child,
            name,
            reaped: None,
        }
    }

    /// The process id (also its process group's id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its standard output, if it was piped and not taken yet.
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Its standard error, if it was piped and not taken yet.
    pub fn stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Its standard input, if it was piped and not taken yet.
    pub fn stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Sends SIGTERM, as an init system would, and waits for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        if self.reaped.is_none() {
            signal_group(self.id(), "TERM");
        }
        self.wait(within)
    }

    /// Waits for the process to exit; panics, naming it, if it has not within `within`.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} (pid {}) did not exit within {within:?}",
                self.name,
                self.id()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its exit status if it has exited (then it is reaped), `None` if it is still running.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            let status = self.child.try_wait().expect("the child's status");
            if let Some(status) = status {
                self.forget();
                self.reaped = Some(status);
            }
        }
        self.reaped
    }

    fn forget(&self) {
        let id = self.id();
        live().retain(|&(_, group)| group != id);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The group first, so that what the process started goes too (chromedriver's browser),
        // even when the process itself has already exited.
        signal_group(self.id(), "KILL");
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.forget();
        }
    }
}

/// Kills every guarded process of `scope` not yet reaped, with its group. Their guards still reap
/// them.
fn kill_scope(scope: u64) {
    for &(_, group) in live().iter().filter(|(of, _)| *of == scope) {
        signal_group(group, "KILL");
    }
}

/// Runs `test` on a thread of its own and returns what it returns, or panics with its panic. If
/// it has not finished after `limit`, every guarded process it started is killed (which ends a
/// test waiting on one), and this panics saying the test passed its deadline. Processes started
/// by other tests running meanwhile are left alone.
pub fn with_deadline<T: Send + 'static>(
    limit: Duration,
    test: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, finished) = mpsc::channel();
    let name = thread::current().name().unwrap_or("test").to_owned();
    let scope = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    let body = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            enter(scope);
            let _ = done.send(panic::catch_unwind(AssertUnwindSafe(test)));
        })
        .expect("a thread for the test");
    let outcome = match finished.recv_timeout(limit) {
        Ok(outcome) => outcome,
        Err(_) => {
            kill_scope(scope);
            let wound_down = finished.recv_timeout(WIND_DOWN).is_ok();
            panic!(
                "{name} passed its deadline of {limit:?}: every process it started was killed{}",
                if wound_down {
                    ""
                } else {
                    " (and the test itself was still stuck after that)"
                }
            );
        }
    };
    let _ = body.join();
    outcome.unwrap_or_else(|panic| panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::Path;

    fn gone(pid: u32) -> bool {
        // A process that was killed but not reaped still has its /proc entry (a zombie).
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_test_that_panics_midway_leaves_no_process_behind() {
        let (started, pid) = mpsc::channel();
        let test = thread::spawn(move || {
            let process = Process::spawn(Command::new("sleep").arg("600"));
            started.send(process.id()).unwrap();
            panic!("the test fails mid-way, with its process running");
        });
        assert!(test.join().is_err(), "the test panicked");
        let pid = pid.recv().unwrap();
        assert!(gone(pid), "sleep (pid {pid}) was killed and reaped");
        assert!(!live().iter().any(|&(_, group)| group == pid));
    }

    #[test]
    fn what_a_process_started_goes_with_it() {
        // sh starts sleep in the background and prints its pid; dropping the guard of sh kills
        // the whole group, sleep included (it is reaped by whoever inherits it).
        let mut shell = Process::spawn(
            Command::new("sh")
                .args(["-c", "sleep 600 & echo $!; wait"])
                .stdout(Stdio::piped()),
        );
        let mut out = shell.stdout().unwrap();
        let mut text = String::new();
        let mut byte = [0];
        while !text.ends_with('\n') {
            assert_eq!(
                out.read(&mut byte).unwrap(),
                1,
                "sh printed its child's pid"
            );
            text.push(byte[0] as char);
        }
        let grandchild: u32 = text.trim().parse().unwrap();
        drop(shell);
        // The signal is delivered asynchronously: wait (bounded) until the sleep is gone, or a
        // zombie waiting for its new parent to reap it. Either way it no longer runs.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{grandchild}/status"));
            if status.map_or(true, |s| s.contains("State:\tZ")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the background sleep (pid {grandchild}) was not killed"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_test_past_its_deadline_fails_and_its_processes_are_killed() {
        // Another test's process, running meanwhile: left alone.
        let mut bystander = Process::spawn(Command::new("sleep").arg("600"));
        let (started, pid) = mpsc::channel();
        let outcome = thread::spawn(move || {
            with_deadline(Duration::from_millis(200), move || {
                let mut process =
                    Process::spawn(Command::new("sleep").arg("600").stdout(Stdio::piped()));
                started.send(process.id()).unwrap();
                // Blocks until the process's output ends: only the deadline's kill ends it.
                let mut rest = Vec::new();
                process.stdout().unwrap().read_to_end(&mut rest).unwrap();
            })
        })
        .join();
        let message = *outcome
            .expect_err("the test failed")
            .downcast::<String>()
            .unwrap();
        assert!(
            message.contains("passed its deadline of 200ms"),
            "{message}"
        );
        assert!(!message.contains("still stuck"), "{message}");
        let pid = pid.recv().unwrap();
        assert!(gone(pid), "sleep (pid {pid}) was killed and reaped");
        assert!(
            bystander.try_wait().is_none(),
            "another test's process runs on"
        );
    }

    #[test]
    fn a_deadline_returns_what_the_test_returns_and_passes_its_panic_on() {
        assert_eq!(with_deadline(Duration::from_secs(60), || 42), 42);
        let panicked = thread::spawn(|| with_deadline(Duration::from_secs(60), || panic!("boom")))
            .join()
            .expect_err("the panic comes through");
        assert_eq!(*panicked.downcast::<&str>().unwrap(), "boom");
    }
}
