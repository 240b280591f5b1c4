//! A large file fetched over HTTP(S) into a `.part` file beside its target,
//! resumable: a `.part` left by an interrupted run (or a connection cut
//! half-way, retried here a few times) is continued with an HTTP Range
//! request. The caller checks the finished `.part` and renames it into
//! place, so a half-downloaded file is never taken for the real one. ureq
//! with rustls; proxies from `http_proxy` / `https_proxy` / `ALL_PROXY`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::base::CancelFlag;

/// How far a download is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownloadProgress {
    /// Bytes in the `.part` file so far (resumed bytes included).
    pub bytes: u64,
    /// The whole file's size, when the server says.
    pub total: Option<u64>,
    /// Bytes per second over this run.
    pub rate: f64,
}

impl DownloadProgress {
    /// "412.3 of 1,246.8 MB, 35.1 MB/s, ETA 24 s".
    pub fn describe(&self) -> String {
        const MB: f64 = 1e6;
        let size = match self.total {
            Some(t) => format!("{:.1} of {:.1} MB", self.bytes as f64 / MB, t as f64 / MB),
            None => format!("{:.1} MB", self.bytes as f64 / MB),
        };
        let eta = self
            .eta_seconds()
            .map_or(String::new(), |e| format!(", ETA {e:.0} s"));
        format!("{size}, {:.1} MB/s{eta}", self.rate / MB)
    }

    /// Seconds left at the current rate.
    pub fn eta_seconds(&self) -> Option<f64> {
        let total = self.total?;
        (self.rate > 0.0).then(|| total.saturating_sub(self.bytes) as f64 / self.rate)
    }
}

/// Why a download stopped.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {message} (no network, or the address is wrong?)")]
    Connect { url: String, message: String },
    #[error("{url}: the server answered HTTP {status} {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("{url} serves a web page ({content_type}), not the file: check the address")]
    WebPage { url: String, content_type: String },
    #[error(
        "{url}: the connection broke after {bytes} bytes ({message}); {part} is kept and the next try resumes it"
    )]
    Interrupted {
        url: String,
        bytes: u64,
        part: String,
        message: String,
    },
    #[error(
        "{url} ended after {bytes} of {total} bytes; {part} is kept and the next try resumes it"
    )]
    Truncated {
        url: String,
        bytes: u64,
        total: u64,
        part: String,
    },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("cancelled; {part} is kept and the next try resumes it")]
    Cancelled { part: String },
}

/// The `.part` file a download of `target` writes.
pub fn part_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    target.with_file_name(name)
}

/// The host of an http(s) URL, without port or user.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// Whether the proxy of the environment applies to `url`: never for the
/// loopback host, nor for a host listed in `no_proxy` (comma-separated
/// names or domain suffixes, `*` for all), which ureq 2 does not read.
fn proxy_applies(url: &str, no_proxy: Option<&str>) -> bool {
    let host = url_host(url).to_ascii_lowercase();
    if host == "localhost" || host == "::1" || host.starts_with("127.") {
        return false;
    }
    !no_proxy
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .any(|entry| {
            let entry = entry.trim_start_matches('.').to_ascii_lowercase();
            entry == "*"
                || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
        })
}

/// Attempts per call when the connection breaks mid-body.
const ATTEMPTS: usize = 3;

/// Fetches `url` into `part` (appending to what it holds), reporting
/// progress about every 100 ms; returns the file's size once the server has
/// sent it all.
pub fn fetch_resumable(
    url: &str,
    part: &Path,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&DownloadProgress),
) -> Result<u64, DownloadError> {
    let agent = ureq::AgentBuilder::new()
        .try_proxy_from_env(proxy_applies(
            url,
            std::env::var("NO_PROXY")
                .or(std::env::var("no_proxy"))
                .ok()
                .as_deref(),
        ))
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        match fetch_once(&agent, url, part, cancel, progress) {
            Ok(size) => return Ok(size),
            Err(e @ (DownloadError::Interrupted { .. } | DownloadError::Truncated { .. })) => {
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(DownloadError::Cancelled {
        part: part.display().to_string(),
    }))
}

fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&DownloadProgress),
) -> Result<u64, DownloadError> {
    let part_name = part.display().to_string();
    let write_error = |e: std::io::Error| DownloadError::Write {
        path: part_name.clone(),
        message: e.to_string(),
    };
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(have),
        Err(ureq::Error::Status(status, r)) => {
            return Err(DownloadError::Status {
                url: url.to_string(),
                status,
                reason: r.status_text().to_string(),
            });
        }
        Err(ureq::Error::Transport(t)) => {
            // ureq's message starts with the address, which ours names.
            let message = t.to_string();
            let message = message
                .strip_prefix(&format!("{url}: "))
                .unwrap_or(&message)
                .to_string();
            return Err(DownloadError::Connect {
                url: url.to_string(),
                message,
            });
        }
    };
    let content_type = response.content_type().to_ascii_lowercase();
    if content_type.starts_with("text/html") {
        return Err(DownloadError::WebPage {
            url: url.to_string(),
            content_type,
        });
    }
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    // 206: the server continues at `have`; anything else starts over.
    let resumed = response.status() == 206
        && response
            .header("Content-Range")
            .is_some_and(|r| r.starts_with(&format!("bytes {have}-")));
    let start = if resumed { have } else { 0 };
    let total = length.map(|l| l + start);
    let mut file: File = if resumed {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(write_error)?;
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = start;
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        if cancel.is_cancelled() {
            file.flush().map_err(write_error)?;
            return Err(DownloadError::Cancelled { part: part_name });
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().map_err(write_error)?;
                return Err(DownloadError::Interrupted {
                    url: url.to_string(),
                    bytes,
                    part: part_name,
                    message: e.to_string(),
                });
            }
        };
        file.write_all(&buf[..n]).map_err(write_error)?;
        bytes += n as u64;
        if reported.elapsed() >= Duration::from_millis(100) {
            reported = Instant::now();
            let seconds = started.elapsed().as_secs_f64().max(1e-3);
            progress(&DownloadProgress {
                bytes,
                total,
                rate: (bytes - start) as f64 / seconds,
            });
        }
    }
    file.sync_all().map_err(write_error)?;
    if let Some(total) = total
        && bytes < total
    {
        return Err(DownloadError::Truncated {
            url: url.to_string(),
            bytes,
            total,
            part: part_name,
        });
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-3);
    progress(&DownloadProgress {
        bytes,
        total: total.or(Some(bytes)),
        rate: (bytes - start) as f64 / seconds,
    });
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_skips_loopback_and_no_proxy_hosts() {
        assert!(!proxy_applies("http://127.0.0.1:8080/x.pt", None));
        assert!(!proxy_applies("http://localhost/x.pt", None));
        assert!(!proxy_applies("http://[::1]:9/x.pt", None));
        let url = "https://openaipublic.blob.core.windows.net/diffusion/x.pt";
        assert!(proxy_applies(url, None));
        assert!(!proxy_applies(url, Some("example.org, .windows.net")));
        assert!(!proxy_applies(url, Some("*")));
        assert!(proxy_applies(url, Some("example.org")));
        assert_eq!(url_host("http://u:p@host.example:81/a?b"), "host.example");
    }

    #[test]
    fn the_part_file_sits_beside_its_target() {
        assert_eq!(
            part_path(Path::new("/data/backbones/64x64_diffusion.pt")),
            PathBuf::from("/data/backbones/64x64_diffusion.pt.part")
        );
        let p = DownloadProgress {
            bytes: 50,
            total: Some(150),
            rate: 25.0,
        };
        assert_eq!(p.eta_seconds(), Some(4.0));
        assert_eq!(p.describe(), "0.0 of 0.0 MB, 0.0 MB/s, ETA 4 s");
    }
}
