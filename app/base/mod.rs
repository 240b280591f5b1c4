//! The few things every layer shares and that belong to none: the
//! allocator's policy, cancelling work, the seeded random generator, number
//! formatting, the thread count, the data folder, the log and its step
//! lines. Depends on nothing else in the crate.

pub mod allocator;
pub mod cancel;
pub mod data_dir;
pub mod logging;
pub mod numbers;
pub mod rng;
pub mod step;
pub mod threads;

pub use cancel::CancelFlag;
pub use numbers::thousands;
pub use rng::NormalRng;
