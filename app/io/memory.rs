//! Whether a whole read fits in memory: a raster's declared size is checked
//! against the memory this process may use before any sample is read, so
//! that a header claiming 100000 x 100000 pixels is a message naming the
//! file and the way out (`predict` reads in windows), never an abort.

use std::path::Path;

use super::error::ReadError;

/// Sets the memory a whole read may take, in MiB (a job's share on a shared
/// node); otherwise what Linux reports as available, capped by the cgroup's
/// limit (a container's or a Slurm job's).
pub const MEMORY_ENV: &str = "UNIDIFF_STUDIO_MEMORY_MIB";

/// A whole read may take this share of the available memory: what follows
/// it (renderings, features) needs the rest.
const SHARE: f64 = 0.8;

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn cgroup_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    text.trim().parse().ok()
}

/// Bytes this process may use for a read, when known.
pub fn available_bytes() -> Option<u64> {
    if let Some(mib) = std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(mib.saturating_mul(1 << 20));
    }
    match (meminfo_available(), cgroup_limit()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
    let Some(mut available) = available_bytes() else {
        return Ok(());
    };
    let may = |available: u64| (available as f64 * SHARE) as u128;
    if need > may(available) {
        // Memory this process freed and keeps for reuse (base::allocator)
        // counts as taken in the system's figure: give it back, look again.
        crate::base::allocator::give_back_freed_memory();
        available = available_bytes().unwrap_or(available);
    }
    if need <= may(available) {
        return Ok(());
    }
    Err(ReadError::TooBig {
        path: path.to_path_buf(),
        width,
        height,
        bands,
        need: size_words(need),
        available: size_words(u128::from(available)),
    })
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
}
