//! Progress lines on stderr for steps that take a while.

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
