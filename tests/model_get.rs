//! `unidiff-studio model get` against a real HTTP server on 127.0.0.1 that
//! this test starts, serving files it makes (never the real URL): the tiny
//! fixture checkpoint whole, with a connection cut half-way that the resume
//! (HTTP Range) must complete, a 404, a web page, a truncated file, and a
//! checkpoint of another layout. Wrong files are deleted and the backbone
//! already there stays.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use common::fixture;
use common::http::serve;

fn get(url: &str, to: &Path, config: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
        .args(["model", "get", "--url", url, "--config", config, "--to"])
        .arg(to)
        // Loopback never goes through a proxy (and a proxy of the
        // environment must not change that).
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_download_is_checked_recorded_and_resumed_after_a_cut() {
    let tiny = std::fs::read(fixture("adm_tiny/model.pt")).unwrap();
    let (base, log) = serve(tiny.clone());
    let dir = tempfile::tempdir().unwrap();

    // Whole, at once.
    let out = get(&format!("{base}/files/tiny.pt"), dir.path(), "tiny");
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("tiny.pt");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        path.display().to_string()
    );
    assert_eq!(std::fs::read(&path).unwrap(), tiny);
    assert!(!dir.path().join("tiny.pt.part").exists());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tiny.json")).unwrap()).unwrap();
    let sha = unidiff_studio::model::checkpoint::file_sha256(&path).unwrap();
    assert_eq!(record["sha256"], sha.as_str());
    assert_eq!(record["bytes"], tiny.len() as u64);

    // The connection breaks after a third: the same call resumes from there.
    let cut = tempfile::tempdir().unwrap();
    let out = get(&format!("{base}/cut/tiny.pt"), cut.path(), "tiny");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(cut.path().join("tiny.pt")).unwrap(), tiny);
    let requests: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/cut/tiny.pt")
        .cloned()
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].1, None);
    let resumed_at: usize = requests[1]
        .1
        .as_ref()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .expect("a Range request");
    assert_eq!(resumed_at, tiny.len() / 3, "{requests:?}");
}

#[test]
fn bad_downloads_are_refused_deleted_and_leave_the_old_backbone() {
    let tiny = std::fs::read(fixture("adm_tiny/model.pt")).unwrap();
    let (base, _) = serve(tiny.clone());
    let dir = tempfile::tempdir().unwrap();
    // A backbone already there under the target's name.
    let old = dir.path().join("tiny.pt");
    std::fs::write(&old, b"the old backbone").unwrap();

    let out = get(&format!("{base}/missing.pt"), dir.path(), "tiny");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));

    let out = get(&format!("{base}/page.pt"), dir.path(), "tiny");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("web page"), "{}", stderr(&out));

    let out = get(&format!("{base}/truncated/tiny.pt"), dir.path(), "tiny");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the expected checkpoint and was deleted"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("tiny.pt.part").exists());

    // The tiny checkpoint is not the ImageNet-64 layout: the differences listed.
    let out = get(&format!("{base}/files/tiny.pt"), dir.path(), "imagenet64");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("missing") && err.contains("mis-shaped"),
        "{err}"
    );
    assert!(!dir.path().join("tiny.pt.part").exists());
    assert_eq!(std::fs::read(&old).unwrap(), b"the old backbone");

    // Nothing listens: a clear message.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = get(
        &format!("http://127.0.0.1:{port}/tiny.pt"),
        dir.path(),
        "tiny",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no network"), "{}", stderr(&out));
}
