//! What host-setup made, on disk, so that `down`, `status`, `exec` and the recovery
//! of an interrupted setup know it without guessing.
//!
//! ```text
//! <state-dir>/layers/<layer>-<hash>/       built image layers (shared, cached)
//! <state-dir>/containers/<name>.lock       flock: one host-setup per container at a time
//! <state-dir>/containers/<name>.journal    what was made, as typed records (journal.rs)
//! <state-dir>/containers/<name>/           upper/ work/ merge/ console.log
//! ```
//!
//! (modes: perms.rs; nothing there is any other host user's)
//!
//! - `paths`   where everything lives
//! - `journal` the records, written before each thing is made, read back by down/status
//! - `lock`    the per-container lock and the state dir's short global lock
//! - `proc`    processes named by pid and start time (a recycled pid is not ours)
//! - `perms`   the modes of all of it, the umask, tightening an old state dir
//! - `tree`    removing a directory tree without following links or crossing mounts

mod journal;
mod lock;
mod paths;
pub mod perms;
mod proc;
mod tree;

pub use journal::{Journal, JournalWriter, Record, Resource, FORMAT};
pub use lock::{global_lock, GlobalLock, Lock};
pub use paths::{Paths, DEFAULT_CGROUP_PARENT, DEFAULT_STATE_DIR};
pub use proc::{Proc, Role};
pub use tree::remove_tree;
