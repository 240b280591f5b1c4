//! How many threads the CPU work runs on: every core by default, fewer when
//! the user says so (`--threads N`, or rayon's `RAYON_NUM_THREADS`). The
//! count is checked against the machine so that a typo is an error, not a
//! run that oversubscribes the cores for hours.

use std::num::NonZeroUsize;

/// A thread count that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThreadsError {
    #[error("--threads 0: at least one thread is needed")]
    Zero,
    #[error("--threads {requested}: this machine has {available} cores")]
    TooMany { requested: usize, available: usize },
    #[error("cannot start {requested} worker threads: {reason}")]
    Pool { requested: usize, reason: String },
}

/// The cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Sets the worker-thread count of every parallel loop and product to
/// `requested` (default: rayon's choice, every core), once per process,
/// before any parallel work; returns the count in use.
pub fn use_threads(requested: Option<usize>) -> Result<usize, ThreadsError> {
    let Some(n) = requested else {
        return Ok(rayon::current_num_threads());
    };
    let available = available_cores();
    if n == 0 {
        return Err(ThreadsError::Zero);
    }
    if n > available {
        return Err(ThreadsError::TooMany {
            requested: n,
            available,
        });
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| ThreadsError::Pool {
            requested: n,
            reason: e.to_string(),
        })?;
    Ok(rayon::current_num_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_more_than_the_machine_are_refused_with_the_reason() {
        assert_eq!(use_threads(Some(0)), Err(ThreadsError::Zero));
        let too_many = available_cores() + 1;
        let err = use_threads(Some(too_many)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("--threads {too_many}")),
            "{err}"
        );
        assert!(err.to_string().contains("cores"), "{err}");
        assert!(use_threads(None).unwrap() >= 1);
    }
}
