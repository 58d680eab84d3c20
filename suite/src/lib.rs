//! memtail's heavier tests and benchmarks (`tests/`, `benches/` and `examples/` beside this file),
//! and what the tests share.
//!
//! They live in a workspace member of their own so that their dependencies (criterion, proptest,
//! reqwest, tungstenite, libtest-mimic) are not built for memtail's examples. Run them from the
//! workspace root: `cargo test --all-features` runs this package's tests with memtail's.
//!
//! Tests that need something from the machine (a daemon, a browser, a built example) use
//! [`system_test`]: when it is missing they are reported as *ignored*, with the reason, in the
//! test summary, and they fail instead when the matching `MEMTAIL_REQUIRE_*` variable is set (as
//! `.ci/run` does).

use std::path::PathBuf;
use std::time::Duration;

pub use libtest_mimic::{Completion, Failed, Trial};

#[path = "../../tests/support/process.rs"]
pub mod process;

/// How long a whole system test may run before it fails and its processes are killed.
pub const TEST_DEADLINE: Duration = Duration::from_secs(180);

/// Something a system test needs that this machine does not have.
#[derive(Debug)]
pub struct Missing {
    /// What is missing and how to get it, e.g. "rsyslogd is not on the PATH (apt-get install
    /// rsyslog)". Shown as the reason the test was ignored.
    pub reason: String,
    /// The variable that, when set, makes the test fail instead, e.g. `MEMTAIL_REQUIRE_RSYSLOG`.
    pub require: &'static str,
}

/// A test that runs `body` with what `needs` found, under [`TEST_DEADLINE`]; ignored with the
/// reason when `needs` finds nothing, or failed when `MEMTAIL_REQUIRE_*` says it must run.
pub fn system_test<T: Send + 'static>(
    name: &str,
    needs: fn() -> Result<T, Missing>,
    body: fn(T),
) -> Trial {
    Trial::ignorable_test(name, move || match needs() {
        Ok(found) => {
            process::with_deadline(TEST_DEADLINE, move || body(found));
            Ok(Completion::Completed)
        }
        Err(Missing { reason, require }) if std::env::var_os(require).is_some() => {
            Err(format!("{reason}; {require} is set, so this machine must run this test").into())
        }
        Err(Missing { reason, .. }) => Ok(Completion::ignored_with(reason)),
    })
}

/// Runs the trials as the standard test harness would (the same arguments, filters and output)
/// and exits.
pub fn run(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials).exit()
}

/// The program `name` on the `PATH`, or the path in the variable `override_var` if it is set.
pub fn find_program(name: &str, override_var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(override_var) {
        return Some(path.into());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Like [`find_program`], as a [`Missing`] when absent: `install` says how to get it.
pub fn need_program(
    name: &str,
    override_var: &str,
    install: &str,
    require: &'static str,
) -> Result<PathBuf, Missing> {
    find_program(name, override_var).ok_or_else(|| Missing {
        reason: format!("{name} is not on the PATH: {install}"),
        require,
    })
}
