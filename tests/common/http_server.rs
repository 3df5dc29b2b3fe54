//! A local HTTP/1.1 server for the download tests (no outside network): serves one body,
//! honouring `Range`, or misbehaves on purpose (a cut transfer, 404, a stall, silence).
//! Included with `#[path = "common/http_server.rs"] mod http_server;`.
#![allow(dead_code, clippy::unwrap_used)] // Each test crate uses a part; tests may panic.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does with a request.
#[derive(Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// The file, honouring `Range`.
    Serve,
    /// The first answer sends the headers and half the body, then closes; later ones serve.
    CutFirst,
    /// 404 Not Found.
    Missing,
    /// Headers and 1,000 bytes, then silence (the connection stays open).
    Stall,
    /// Accepts and never answers.
    Mute,
}

/// A local HTTP/1.1 server of `body`; records each request's `Range` header.
pub struct Server {
    /// The file's URL.
    pub url: String,
    /// Each request's `Range` header.
    pub ranges: Arc<Mutex<Vec<Option<String>>>>,
}

pub fn serve(body: Vec<u8>, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/models/weights-1234abcd.pth",
        listener.local_addr().unwrap()
    );
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ranges);
    std::thread::spawn(move || {
        for (count, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let body = body.clone();
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || answer(stream, &body, behaviour, count, &seen));
        }
    });
    Server { url, ranges }
}

fn answer(
    mut stream: TcpStream,
    body: &[u8],
    behaviour: Behaviour,
    count: usize,
    seen: &Mutex<Vec<Option<String>>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("range:") {
            range = Some(value.trim().to_owned());
        }
    }
    seen.lock().unwrap().push(range.clone());
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    match behaviour {
        Behaviour::Mute => std::thread::sleep(Duration::from_secs(30)),
        Behaviour::Missing => {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
        Behaviour::Stall => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..1000]);
            let _ = stream.flush();
            std::thread::sleep(Duration::from_secs(30));
        }
        Behaviour::CutFirst if count == 0 => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..body.len() / 2]);
        }
        Behaviour::Serve | Behaviour::CutFirst => {
            let rest = &body[start.min(body.len())..];
            let head = if start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\n\r\n",
                    rest.len(),
                    body.len() - 1,
                    body.len()
                )
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
            };
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(rest);
        }
    }
}
