//! Advisory locks between processes on a project or a run: an exclusive OS file lock
//! (`File::try_lock`, `flock` on Unix) on a small lock file, which holds who took it (pid,
//! command line, purpose, time) so that a refused process can say who holds it.
//!
//! A lock file exists only while its lock is held: the holder removes it before releasing
//! the lock, and a process that locked a file which was removed meanwhile tries again on the
//! new one. The kernel drops the lock when its process dies, however it dies (`kill -9`
//! included), so a lock file left by a dead process is taken over by the next process. The holder's details are written into the locked file itself (not through
//! `atomic_file`, which would replace the file and with it the lock); nothing but this module
//! reads them. Like `atomic_file`, this module imports nothing of the crate; errors are
//! `io::Error`s whose message names the holder, mapped by each layer with the path.
//!
//! Which locks exist: `<project>/.workbench.lock`, held for the few milliseconds of a
//! read-modify-write of `project.ron` or `split.ron` (waited for, see [`wait_limit`]), and
//! `<run>/run.lock`, held for as long as a process trains the run (refused at once).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The lock file of a project folder.
pub const PROJECT_LOCK_FILE: &str = ".workbench.lock";

/// How long a process waits for a project lock by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// A held lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked: a process waiting on this file then finds it gone and
        // locks a new one (see `try_lock`).
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Who holds (or last held) a lock, as its lock file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// The holder's command line.
    pub command: String,
    /// What it holds the lock for ("training run-003", "saving project.ron").
    pub purpose: String,
    /// When it took the lock (seconds since the Unix epoch).
    pub since_unix: u64,
}

impl Holder {
    fn of_this_process(purpose: &str) -> Self {
        Self {
            pid: std::process::id(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            purpose: purpose.to_owned(),
            since_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    fn encode(&self) -> String {
        // One field per line; the command line is last so that it may hold anything.
        format!(
            "pid {}\npurpose {}\nsince {}\ncommand {}\n",
            self.pid,
            self.purpose.replace('\n', " "),
            self.since_unix,
            self.command.replace('\n', " ")
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut holder = Holder::default();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "pid" => holder.pid = value.parse().ok()?,
                "purpose" => holder.purpose = value.to_owned(),
                "since" => holder.since_unix = value.parse().unwrap_or(0),
                "command" => holder.command = value.to_owned(),
                _ => {}
            }
        }
        (holder.pid != 0).then_some(holder)
    }

    /// "pid 4242 (`transfer-workbench train p`), training run-003 since 12 s ago".
    pub fn describe(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!(
            "pid {} (`{}`), {} since {} s ago",
            self.pid,
            self.command,
            self.purpose,
            now.saturating_sub(self.since_unix)
        )
    }
}

/// The holder recorded in the lock file at `path`, if it names one.
pub fn recorded_holder(path: &Path) -> Option<Holder> {
    Holder::decode(&std::fs::read_to_string(path).ok()?)
}

/// Takes the lock at `path` now, or fails with `ErrorKind::WouldBlock` and a message naming
/// the holder. Creates the lock file (not its folder) when missing.
pub fn try_lock(path: &Path, purpose: &str) -> std::io::Result<FileLock> {
    let mut file = loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(refusal(&mut file)),
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // A file system without locks: go on unprotected rather than not at all.
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // The previous holder may have removed the file between our open and our lock.
        if still_at(&file, path) {
            break file;
        }
    };
    let holder = Holder::of_this_process(purpose);
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder.encode().as_bytes())?;
    Ok(FileLock {
        file,
        path: path.to_owned(),
    })
}

/// Whether `file` is still the file at `path` (not removed or replaced since it was opened).
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Takes the lock at `path`, waiting up to `wait` while another process holds it.
pub fn lock_waiting(path: &Path, purpose: &str, wait: Duration) -> std::io::Result<FileLock> {
    let started = Instant::now();
    loop {
        match try_lock(path, purpose) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// How long a process waits for a project lock: `TRANSFER_WORKBENCH_LOCK_WAIT_MS`, else 10 s.
pub fn wait_limit() -> Duration {
    std::env::var("TRANSFER_WORKBENCH_LOCK_WAIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DEFAULT_WAIT, Duration::from_millis)
}

/// Takes the lock of project folder `dir` for `purpose` (waiting up to [`wait_limit`]);
/// creates the folder when missing.
pub fn lock_project(dir: &Path, purpose: &str) -> std::io::Result<FileLock> {
    std::fs::create_dir_all(dir)?;
    lock_waiting(&dir.join(PROJECT_LOCK_FILE), purpose, wait_limit())
}

/// The error of a refused lock: who holds it, from the lock file (read a few times, since a
/// holder writes its details just after taking the lock).
fn refusal(file: &mut File) -> std::io::Error {
    let mut holder = None;
    for _ in 0..5 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut text).is_ok() {
            holder = Holder::decode(&text);
        }
        if holder.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let who = holder.map_or_else(
        || "another process (it has not said which yet)".to_owned(),
        |h| h.describe(),
    );
    std::io::Error::new(std::io::ErrorKind::WouldBlock, format!("locked by {who}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_again_after_the_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = try_lock(&path, "testing the lock").unwrap();
        let err = try_lock(&path, "a second try").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("testing the lock"), "{message}");
        let started = Instant::now();
        let waited = lock_waiting(&path, "waiting", Duration::from_millis(60)).unwrap_err();
        assert_eq!(waited.kind(), std::io::ErrorKind::WouldBlock);
        assert!(started.elapsed() >= Duration::from_millis(60));
        drop(held);
        assert!(!path.exists(), "a released lock leaves no file");
        let again = try_lock(&path, "after the drop").unwrap();
        assert_eq!(
            recorded_holder(again.path()).unwrap().purpose,
            "after the drop"
        );
    }

    #[test]
    fn holders_round_trip_and_damaged_files_name_none() {
        let holder = Holder {
            pid: 7,
            command: "tw train a b\nc".into(),
            purpose: "saving".into(),
            since_unix: 5,
        };
        let back = Holder::decode(&holder.encode()).unwrap();
        assert_eq!((back.pid, back.command.as_str()), (7, "tw train a b c"));
        assert_eq!(Holder::decode("garbage"), None);
        assert_eq!(Holder::decode("pid x\n"), None);
    }
}
