//! A real HTTP/1.1 server on 127.0.0.1 for the download tests, serving one
//! body under every path but a few that misbehave on purpose: `/missing.pt`
//! (404), `/page.pt` (a web page), `/truncated/...` (half the body, honestly
//! sized), `/cut/...` (the first request promises the whole body and hangs
//! up after a third; later ones honour Range). Every other path serves the
//! body, with Range.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the server saw: (path, Range header) per request.
pub type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn respond(mut stream: TcpStream, body: &[u8], log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    let cut_before = {
        let mut log = log.lock().unwrap();
        log.push((path.clone(), range.map(|r| format!("bytes={r}-"))));
        // The first request for /cut/ breaks half-way.
        path.starts_with("/cut/") && log.iter().filter(|(p, _)| p == &path).count() == 1
    };
    let head = |status: &str, kind: &str, len: usize, extra: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    let octets = "application/octet-stream";
    let (header, payload): (String, &[u8]) = match path.as_str() {
        "/missing.pt" => (head("404 Not Found", "text/plain", 9, ""), b"not found"),
        "/page.pt" => {
            let page: &[u8] = b"<html><body>sign in</body></html>";
            (
                head("200 OK", "text/html; charset=utf-8", page.len(), ""),
                page,
            )
        }
        "/truncated/tiny.pt" => {
            let half = &body[..body.len() / 2];
            (head("200 OK", octets, half.len(), ""), half)
        }
        _ => match range {
            Some(from) => (
                head(
                    "206 Partial Content",
                    octets,
                    body.len() - from,
                    &format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    ),
                ),
                &body[from..],
            ),
            None => (head("200 OK", octets, body.len(), ""), body),
        },
    };
    stream.write_all(header.as_bytes()).unwrap();
    if cut_before {
        // Promise the whole file, send less than half, hang up.
        let _ = stream.write_all(&payload[..payload.len() / 3]);
        return;
    }
    let _ = stream.write_all(payload);
}

/// A server for `body` on a free port; returns its base URL and log.
pub fn serve(body: Vec<u8>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let server_log = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            respond(stream, &body, &server_log);
        }
    });
    (url, log)
}
