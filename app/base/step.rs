//! Progress lines in the log for steps that take a while (the CLI's
//! "[..] step" then "[ok] step (s)"), and the process's peak memory.

use std::time::Instant;

/// Announces a step and reports its duration when done.
pub struct Step {
    name: String,
    start: Instant,
}

impl Step {
    pub fn start(name: impl Into<String>) -> Self {
        let name = name.into();
        log::info!("[..] {name}");
        Self {
            name,
            start: Instant::now(),
        }
    }

    /// Ends the step; returns its duration in seconds.
    pub fn done(self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        log::info!("[ok] {} ({s:.2} s)", self.name);
        s
    }
}

/// The process's peak resident memory (VmHWM) in MiB, where the system
/// says (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
