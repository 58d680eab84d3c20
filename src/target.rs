//! Event targets (`my_app::db`), interned: an entry keeps a 2-byte number, the name is kept once.
// Only `tracing` and `log` entries have targets.
#![cfg_attr(not(any(feature = "tracing", feature = "log")), allow(dead_code))]

use std::cell::Cell;
use std::collections::HashMap;

use parking_lot::RwLock;

/// The most distinct targets remembered; an entry with a later one has [`UNRECORDED`].
pub(crate) const MAX_TARGETS: usize = 4096;

/// The longest target name remembered, in bytes; an entry with a longer one has [`UNRECORDED`].
/// With [`MAX_TARGETS`], the table holds at most 1 MiB of names, whatever the program logs.
pub(crate) const MAX_TARGET_LEN: usize = 256;

/// The number of a target that could not be recorded.
const UNKNOWN: u16 = u16::MAX;

/// The target of an entry whose target could not be recorded (too long, or too many distinct
/// ones): not "no target", so that no target filter keeps it.
pub(crate) const UNRECORDED: &str = "<target not recorded>";

#[derive(Default)]
struct Table {
    names: Vec<&'static str>,
    ids: HashMap<&'static str, u16>,
}

static TABLE: RwLock<Option<Table>> = RwLock::new(None);

std::thread_local! {
    /// The last target this thread interned: events of one callsite come in runs.
    static LAST: Cell<Option<(&'static str, u16)>> = const { Cell::new(None) };
}

/// The number of `target` (1 or more), or that of [`UNRECORDED`] when the table is full or the
/// name longer than [`MAX_TARGET_LEN`]. A target seen for the first time is copied once and kept
/// for the life of the process.
pub(crate) fn intern(target: &str) -> u16 {
    if target.len() > MAX_TARGET_LEN {
        return UNKNOWN;
    }
    if let Ok(Some((name, id))) = LAST.try_with(Cell::get) {
        if name == target {
            return id;
        }
    }
    let id = lookup(target).unwrap_or_else(|| insert(target));
    if id != UNKNOWN {
        if let Some(name) = name(id) {
            let _ = LAST.try_with(|last| last.set(Some((name, id))));
        }
    }
    id
}

fn lookup(target: &str) -> Option<u16> {
    TABLE.read().as_ref()?.ids.get(target).copied()
}

fn insert(target: &str) -> u16 {
    let mut table = TABLE.write();
    let table = table.get_or_insert_with(Table::default);
    if let Some(&id) = table.ids.get(target) {
        return id;
    }
    if table.names.len() >= MAX_TARGETS {
        return UNKNOWN;
    }
    let name: &'static str = Box::leak(target.to_owned().into_boxed_str());
    table.names.push(name);
    let id = table.names.len() as u16;
    table.ids.insert(name, id);
    id
}

/// The name of target `id`; `None` for 0, [`UNRECORDED`] for one that could not be recorded.
pub(crate) fn name(id: u16) -> Option<&'static str> {
    if id == UNKNOWN {
        return Some(UNRECORDED);
    }
    let index = usize::from(id).checked_sub(1)?;
    TABLE.read().as_ref()?.names.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_kept_once_and_found_again() {
        let a = intern("memtail::target::tests::a");
        let b = intern(&String::from("memtail::target::tests::b"));
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(intern("memtail::target::tests::a"), a);
        assert_eq!(intern(&String::from("memtail::target::tests::b")), b);
        assert_eq!(name(a), Some("memtail::target::tests::a"));
        assert_eq!(name(0), None);
        // Too long to keep: not recorded, and not taken for "no target".
        let long = "x".repeat(MAX_TARGET_LEN + 1);
        assert_eq!(name(intern(&long)), Some(UNRECORDED));
        assert_ne!(intern(&"y".repeat(MAX_TARGET_LEN)), UNKNOWN);
    }
}
