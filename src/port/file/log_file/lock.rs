//! One server per history file: an exclusive `flock` on `PATH.lock`, held for as long as
//! the file is open (the process's life), with the holder's PID written inside.
//!
//! The lock is on a file of its own because compaction renames a new file over `PATH`: a
//! lock on `PATH` itself would stay on the replaced file. `PATH.lock` is never removed
//! (removing a lock file races with the next server taking it); it is only ever opened
//! without following a symlink. The lock dies with the process, so a crash never leaves
//! a stale one.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

/// `O_NOFOLLOW`, for `OpenOptions::custom_flags`: the last component must not be a
/// symlink.
pub(super) fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// `PATH` with `suffix` appended to its name (`PATH.lock`, `PATH.tmp`).
pub(super) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Takes the exclusive lock of the history file at `path` and writes this process's PID
/// into `PATH.lock`; the open lock file (the lock lasts as long as it is open).
///
/// # Errors
///
/// One line: held by another process (with its PID when it wrote one), or the lock
/// file cannot be opened.
pub(super) fn take(path: &Path) -> Result<File, String> {
    let at = beside(path, ".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(no_follow())
        .open(&at)
        .map_err(|e| format!("cannot open its lock file {}: {e}", at.display()))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == Errno::WOULDBLOCK => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "pid unknown".to_owned(),
            };
            return Err(format!(
                "in use by another process ({holder}, holding {}); one server per file",
                at.display()
            ));
        }
        Err(e) => return Err(format!("cannot lock {}: {e}", at.display())),
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
        .map_err(|e| format!("cannot write its lock file {}: {e}", at.display()))?;
    Ok(file)
}

/// Releases the lock on `file` (a handover: the successor takes it); the file stays
/// open, to [`retake`] it if the handover rolls back.
pub(super) fn release(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, FlockOperation::Unlock)?;
    Ok(())
}

/// Takes the lock on `file` again (a handover rolled back) and writes this PID into it.
pub(super) fn retake(file: &File) -> Result<(), String> {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| format!("cannot lock it again: {e}"))?;
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
        .map_err(|e| format!("cannot write its lock file: {e}"))
}
