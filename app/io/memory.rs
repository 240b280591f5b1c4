//! Whether a whole read fits in memory: a raster's declared size is checked
//! against the memory this process may use before any sample is read, so
//! that a header claiming 100000 x 100000 pixels is a message naming the
//! file and the way out (`predict` reads in windows), never an abort.
//!
//! What this process may use is the smallest of what Linux reports as
//! available, the room left under the process's own limits (`ulimit -v`,
//! `ulimit -d`: `getrlimit`) and the room left under its cgroup's limit (a
//! container's or a Slurm job's: v2 `memory.max`, v1
//! `memory.limit_in_bytes`), and a big buffer is reserved fallibly
//! ([`zeroed_samples`]) so that an allocation the system refuses anyway is
//! an error naming the file and the size.

use std::path::{Path, PathBuf};

use super::error::ReadError;

/// Sets the memory a whole read may take, in MiB (a job's share on a shared
/// node); otherwise the smallest of the limits below.
pub const MEMORY_ENV: &str = "UNIDIFF_STUDIO_MEMORY_MIB";

/// A whole read may take this share of the available memory: what follows
/// it (renderings, features) needs the rest.
const SHARE: f64 = 0.8;

/// The memory this process may still use, and which limit gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRoom {
    pub bytes: u64,
    /// The limit, in words ("the memory the system has available", "the
    /// process's address-space limit (ulimit -v)", ...).
    pub limited_by: String,
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&text, "MemAvailable:")
}

/// The soft limit of `resource`, None when unlimited or unknown.
fn soft_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given, which
    // lives for the call.
    let ok = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Room under the process's address-space (`ulimit -v`) and data-segment
/// (`ulimit -d`) limits: each limit less what the process already maps.
fn rlimit_rooms() -> Vec<MemoryRoom> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut rooms = Vec::new();
    let limits = [
        (
            libc::RLIMIT_AS,
            "VmSize:",
            "the process's address-space limit (ulimit -v)",
        ),
        (
            libc::RLIMIT_DATA,
            "VmData:",
            "the process's data-size limit (ulimit -d)",
        ),
    ];
    for (resource, field, words) in limits {
        if let Some(limit) = soft_limit(resource) {
            let used = kib_field(&status, field).unwrap_or(0);
            rooms.push(MemoryRoom {
                bytes: limit.saturating_sub(used),
                limited_by: words.into(),
            });
        }
    }
    rooms
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The cgroup folders of this process, (v2 path, v1 memory path), from
/// `/proc/self/cgroup` ("0::/user.slice/..." and "N:memory:/...").
fn own_cgroups(text: &str) -> (Option<String>, Option<String>) {
    let mut v2 = None;
    let mut v1 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path.to_string());
        }
    }
    (v2, v1)
}

/// The folder and its ancestors up to `root`: each level's limit binds.
fn levels(root: &Path, path: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut rel = PathBuf::from(path.trim_start_matches('/'));
    loop {
        out.push(root.join(&rel));
        if !rel.pop() {
            break;
        }
    }
    out
}

/// Room under the cgroup's memory limit (v2, else v1): the smallest limit
/// less usage over the process's cgroup and its ancestors.
fn cgroup_room() -> Option<MemoryRoom> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let (v2, v1) = own_cgroups(&text);
    let mut best: Option<MemoryRoom> = None;
    let mut consider = |limit: Option<u64>, used: Option<u64>, words: &str| {
        // v1 reports "no limit" as a number near 2^63.
        let Some(limit) = limit.filter(|&l| l < (1 << 60)) else {
            return;
        };
        let bytes = limit.saturating_sub(used.unwrap_or(0));
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(MemoryRoom {
                bytes,
                limited_by: words.into(),
            });
        }
    };
    let v2_root = Path::new("/sys/fs/cgroup");
    for dir in levels(v2_root, v2.as_deref().unwrap_or("/")) {
        consider(
            read_number(&dir.join("memory.max")),
            read_number(&dir.join("memory.current")),
            "the cgroup's memory limit (memory.max)",
        );
    }
    if let Some(v1) = v1 {
        for dir in levels(Path::new("/sys/fs/cgroup/memory"), &v1) {
            consider(
                read_number(&dir.join("memory.limit_in_bytes")),
                read_number(&dir.join("memory.usage_in_bytes")),
                "the cgroup's memory limit (memory.limit_in_bytes)",
            );
        }
    }
    best
}

/// The memory this process may still use and what limits it, when known:
/// `UNIDIFF_STUDIO_MEMORY_MIB` when set, else the smallest of the available
/// memory and the room under the process's and its cgroup's limits.
pub fn memory_room() -> Option<MemoryRoom> {
    if let Some(mib) = std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(MemoryRoom {
            bytes: mib.saturating_mul(1 << 20),
            limited_by: format!("set by {MEMORY_ENV}"),
        });
    }
    let mut rooms = rlimit_rooms();
    rooms.extend(cgroup_room());
    rooms.extend(meminfo_available().map(|bytes| MemoryRoom {
        bytes,
        limited_by: "the memory the system has available".into(),
    }));
    rooms.into_iter().min_by_key(|r| r.bytes)
}

/// Bytes this process may use for a read, when known.
pub fn available_bytes() -> Option<u64> {
    memory_room().map(|r| r.bytes)
}

/// Bytes in words: "6.3 GB", "512.0 MB".
pub fn size_words(bytes: u128) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// The room in words for a message: "3.2 GB (the process's address-space
/// limit (ulimit -v))".
fn room_words(room: &MemoryRoom) -> String {
    format!(
        "{} this process may use ({})",
        size_words(u128::from(room.bytes)),
        room.limited_by
    )
}

/// Refuses to read `bands` of `width` x `height` samples of
/// `bytes_per_sample` whole when that is more than the memory available.
pub fn check_whole_read(
    path: &Path,
    width: usize,
    height: usize,
    bands: usize,
    bytes_per_sample: usize,
) -> Result<(), ReadError> {
    let need = width as u128 * height as u128 * bands as u128 * bytes_per_sample as u128;
    let Some(mut room) = memory_room() else {
        return Ok(());
    };
    let may = |room: &MemoryRoom| (room.bytes as f64 * SHARE) as u128;
    if need > may(&room) {
        // Memory this process freed and keeps for reuse (base::allocator)
        // counts as taken in the system's figure: give it back, look again.
        crate::base::allocator::give_back_freed_memory();
        room = memory_room().unwrap_or(room);
    }
    if need <= may(&room) {
        return Ok(());
    }
    Err(ReadError::TooBig {
        path: path.to_path_buf(),
        width,
        height,
        bands,
        need: size_words(need),
        available: room_words(&room),
    })
}

/// `len` zeroed f32 samples for reading `path`, reserved fallibly: a buffer
/// the system refuses (a limit this process could not see, fragmentation)
/// is an error naming the file and the size, not an abort.
pub fn zeroed_samples(path: &Path, len: usize) -> Result<Vec<f32>, ReadError> {
    let mut data: Vec<f32> = Vec::new();
    if data.try_reserve_exact(len).is_err() {
        return Err(ReadError::AllocationRefused {
            path: path.to_path_buf(),
            need: size_words(len as u128 * 4),
            available: memory_room()
                .map(|r| room_words(&r))
                .unwrap_or_else(|| "an unknown amount this process may use".into()),
        });
    }
    data.resize(len, 0.0);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_larger_than_memory_is_a_message_with_the_sizes() {
        let e = check_whole_read(Path::new("big.vrt"), 200_000, 100_000, 13, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("big.vrt") && e.contains("1040.0 GB"), "{e}");
        assert!(e.contains("predict"), "{e}");
        check_whole_read(Path::new("small.tif"), 10, 10, 3, 4).unwrap();
        assert_eq!(size_words(6_300_000_000), "6.3 GB");
    }

    #[test]
    fn the_process_cgroups_are_read_for_v1_and_v2() {
        let v2 = "0::/user.slice/user-0.slice/session-1.scope\n";
        assert_eq!(
            own_cgroups(v2),
            (
                Some("/user.slice/user-0.slice/session-1.scope".into()),
                None
            )
        );
        let v1 = "12:cpu,cpuacct:/slurm/uid_0/job_7\n4:memory:/slurm/uid_0/job_7/step_0\n";
        assert_eq!(
            own_cgroups(v1),
            (None, Some("/slurm/uid_0/job_7/step_0".into()))
        );
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            levels(root, "/a/b"),
            vec![root.join("a/b"), root.join("a"), root.join("")]
        );
        assert_eq!(levels(root, "/"), vec![root.join("")]);
    }

    #[test]
    fn the_room_is_the_smallest_limit_and_a_refused_buffer_is_an_error() {
        let room = memory_room().expect("Linux reports the available memory");
        let available = meminfo_available().unwrap();
        assert!(room.bytes <= available, "{room:?}");
        assert!(!room.limited_by.is_empty());
        let e = zeroed_samples(Path::new("cube.tif"), usize::MAX / 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cube.tif") && e.contains("GB"), "{e}");
        assert_eq!(zeroed_samples(Path::new("a.tif"), 3).unwrap(), vec![0.0; 3]);
    }
}
