//! Resumable HTTPS downloads with a sha256 check, for weights the user asks for.
//!
//! The bytes go to `<dest>.part` next to the destination; a cut transfer keeps it, and the
//! next try asks the server for the rest (`Range: bytes=N-`; a server that answers with the
//! whole file starts it over). A complete file is hashed and only then renamed to `dest`, so
//! nothing half-written is ever taken for complete; a wrong hash removes it. Proxies come
//! from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (either case), minus `NO_PROXY`. The
//! transfer runs on a helper thread so that a caller's cancel flag and the deadline for a
//! first answer hold even while the network blocks.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Bytes read per step.
const CHUNK_BYTES: usize = 256 << 10;
/// How often a waiting caller looks at its cancel flag.
const POLL: Duration = Duration::from_millis(50);

/// How long to wait for the network.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Until the server's first answer (DNS, connect, TLS, headers).
    pub first_answer: Duration,
    /// Longest silence in the middle of a transfer.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_answer: Duration::from_secs(8),
            stall: Duration::from_secs(30),
        }
    }
}

/// Why a download did not leave a verified file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "the transfer from {url} stopped after {bytes} bytes ({reason}); run the same command \
         again to resume it"
    )]
    Interrupted {
        url: String,
        bytes: u64,
        reason: String,
    },
    #[error(
        "the file from {url} has sha256 {found}, which does not start with the expected \
         {expected}; it was removed: {}",
        path.display()
    )]
    Hash {
        url: String,
        expected: String,
        found: String,
        path: PathBuf,
    },
    #[error("the download was cancelled; nothing was kept")]
    Cancelled,
    #[error("{reason}: {}", path.display())]
    Io { path: PathBuf, reason: String },
}

/// Progress of a transfer: bytes on disk so far and the total, when the server says.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// The file a transfer writes before it is verified.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `url` to `dest` (resuming `dest.part` when present), checks that its sha256
/// starts with `sha256_prefix` (hex), and renames it into place. With `cancel` set the
/// partial file is removed and [`DownloadError::Cancelled`] returned within a moment.
pub fn download(
    url: &str,
    dest: &Path,
    sha256_prefix: &str,
    timeouts: Timeouts,
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<PathBuf, DownloadError> {
    let part = part_path(dest);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (events, received) = mpsc::channel();
    let worker = {
        let (url, part, stop) = (url.to_owned(), part.clone(), Arc::clone(&stop));
        std::thread::spawn(move || transfer(&url, &part, timeouts, &stop, &events))
    };
    let started = Instant::now();
    let (mut answered, mut finished) = (false, false);
    let outcome = loop {
        if cancel.load(Ordering::Relaxed) {
            break Err(DownloadError::Cancelled);
        }
        match received.recv_timeout(POLL) {
            Ok(Event::Answered) => answered = true,
            Ok(Event::Progress(done, total)) => progress(done, total),
            Ok(Event::Done(result)) => {
                finished = true;
                break result;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !answered && started.elapsed() > timeouts.first_answer {
                    break Err(DownloadError::Unreachable {
                        url: url.to_owned(),
                        reason: format!("no answer within {} s", timeouts.first_answer.as_secs()),
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(DownloadError::Interrupted {
                    url: url.to_owned(),
                    bytes: 0,
                    reason: "the transfer thread ended unexpectedly".into(),
                });
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    if finished {
        let _ = worker.join();
    }
    // An unfinished transfer may sit in a blocking read or name lookup: it is left to end
    // on its own timeout and writes nothing more once it sees `stop`.
    if matches!(outcome, Err(DownloadError::Cancelled)) {
        let _ = std::fs::remove_file(&part);
    }
    let total = outcome?;
    verify_and_place(url, &part, dest, sha256_prefix, total)
}

enum Event {
    Answered,
    Progress(u64, Option<u64>),
    Done(Result<u64, DownloadError>),
}

/// The helper thread: one request, appending to `part`. Sends `Done` with the final size.
fn transfer(
    url: &str,
    part: &Path,
    timeouts: Timeouts,
    stop: &AtomicBool,
    events: &mpsc::Sender<Event>,
) {
    let result = transfer_inner(url, part, timeouts, stop, events);
    let _ = events.send(Event::Done(result));
}

fn transfer_inner(
    url: &str,
    part: &Path,
    timeouts: Timeouts,
    stop: &AtomicBool,
    events: &mpsc::Sender<Event>,
) -> Result<u64, DownloadError> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(timeouts.first_answer)
        .timeout_read(timeouts.stall)
        .redirects(5);
    if let Some(proxy) = proxy_for(url, |name| std::env::var(name).ok()) {
        let proxy = ureq::Proxy::new(&proxy).map_err(|e| DownloadError::Unreachable {
            url: url.to_owned(),
            reason: format!("the proxy '{proxy}' is not usable ({e})"),
        })?;
        builder = builder.proxy(proxy);
    }
    let mut request = builder.build().get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            // The part already holds everything; the hash decides.
            let _ = events.send(Event::Answered);
            return Ok(have);
        }
        Err(ureq::Error::Status(status, _)) => {
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status,
            });
        }
        Err(ureq::Error::Transport(e)) => {
            // The transport error's own text repeats the URL; keep its kind and message.
            let reason = match e.message() {
                Some(message) => format!("{}: {message}", e.kind()),
                None => e.kind().to_string(),
            };
            return Err(DownloadError::Unreachable {
                url: url.to_owned(),
                reason,
            });
        }
    };
    let _ = events.send(Event::Answered);
    let resumed = response.status() == 206 && have > 0;
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    let mut done = if resumed { have } else { 0 };
    let total = length.map(|n| n + done);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| io_err(part, e))?;
    let mut body = response.into_reader();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let _ = events.send(Event::Progress(done, total));
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled);
        }
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_all();
                return Err(DownloadError::Interrupted {
                    url: url.to_owned(),
                    bytes: done,
                    reason: e.to_string(),
                });
            }
        };
        if stop.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled);
        }
        file.write_all(&buffer[..n]).map_err(|e| io_err(part, e))?;
        done += n as u64;
        let _ = events.send(Event::Progress(done, total));
    }
    file.sync_all().map_err(|e| io_err(part, e))?;
    if let Some(total) = total.filter(|t| done < *t) {
        return Err(DownloadError::Interrupted {
            url: url.to_owned(),
            bytes: done,
            reason: format!(
                "the server closed the connection {} bytes early",
                total - done
            ),
        });
    }
    Ok(done)
}

/// Hashes the complete `part`; renames it to `dest` when its sha256 starts with `prefix`,
/// else removes it.
fn verify_and_place(
    url: &str,
    part: &Path,
    dest: &Path,
    prefix: &str,
    _size: u64,
) -> Result<PathBuf, DownloadError> {
    let found = sha256_file(part)?;
    let expected = prefix.to_ascii_lowercase();
    if expected.is_empty() || !found.starts_with(&expected) {
        let _ = std::fs::remove_file(part);
        return Err(DownloadError::Hash {
            url: url.to_owned(),
            expected,
            found,
            path: dest.to_owned(),
        });
    }
    std::fs::rename(part, dest).map_err(|e| io_err(dest, e))?;
    Ok(dest.to_owned())
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, DownloadError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let n = file.read(&mut buffer).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn io_err(path: &Path, e: std::io::Error) -> DownloadError {
    DownloadError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The proxy for `url` from the environment (`env` looks a variable up): `HTTPS_PROXY` for
/// https, `HTTP_PROXY` for http, else `ALL_PROXY`, lower case first as curl does; none when
/// `NO_PROXY` lists the host (`*`, a name, or a `.domain` / `domain` suffix).
pub fn proxy_for(url: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = |name: &str| {
        env(&name.to_ascii_lowercase())
            .or_else(|| env(name))
            .filter(|v| !v.trim().is_empty())
    };
    let (scheme, rest) = url.split_once("://")?;
    let host = rest
        .split(['/', '?', '#'])
        .next()?
        .rsplit('@')
        .next()?
        .trim_start_matches('[')
        .split(']')
        .next()?;
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    if let Some(no_proxy) = var("NO_PROXY") {
        let bypass = no_proxy.split(',').map(str::trim).any(|pattern| {
            let pattern = pattern.trim_start_matches('.').to_ascii_lowercase();
            pattern == "*"
                || (!pattern.is_empty()
                    && (host == pattern || host.ends_with(&format!(".{pattern}"))))
        });
        if bypass {
            return None;
        }
    }
    let specific = if scheme.eq_ignore_ascii_case("https") {
        var("HTTPS_PROXY")
    } else {
        var("HTTP_PROXY")
    };
    specific.or_else(|| var("ALL_PROXY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn proxies_follow_the_scheme_and_no_proxy() {
        let url = "https://download.pytorch.org/models/x.pth";
        let vars = [
            ("HTTPS_PROXY", "http://p:3128"),
            ("http_proxy", "http://q:1"),
        ];
        assert_eq!(proxy_for(url, env(&vars)).as_deref(), Some("http://p:3128"));
        assert_eq!(
            proxy_for("http://example.org/a", env(&vars)).as_deref(),
            Some("http://q:1")
        );
        let all = [("ALL_PROXY", "socks5://s:1080")];
        assert_eq!(
            proxy_for(url, env(&all)).as_deref(),
            Some("socks5://s:1080")
        );
        for no in [
            "pytorch.org",
            ".pytorch.org",
            "*",
            "a.b, download.pytorch.org",
        ] {
            let vars = [("HTTPS_PROXY", "http://p:3128"), ("no_proxy", no)];
            assert_eq!(proxy_for(url, env(&vars)), None, "{no}");
        }
        let vars = [("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", "torch.org")];
        assert!(proxy_for(url, env(&vars)).is_some());
        assert_eq!(proxy_for("http://127.0.0.1:8/x", env(&[])), None);
    }

    #[test]
    fn the_part_file_sits_beside_the_destination() {
        assert_eq!(
            part_path(Path::new("/c/d/resnet50-11ad3fa6.pth")),
            PathBuf::from("/c/d/resnet50-11ad3fa6.pth.part")
        );
    }
}
