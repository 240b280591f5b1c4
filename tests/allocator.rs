//! The allocator's policy (`base::allocator`) as the binaries set it: first
//! thing in `main`, then the work on another thread, as the app's workers
//! and the U-Net's threads do. A block of 64 MiB freed and asked for again
//! comes back without the kernel faulting its pages in anew (glibc's default
//! unmaps it on free: 16,384 faults for the second one too), and giving the
//! free memory back after a job leaves live memory intact. Its own process
//! (no test harness): the policy is process-wide and must come before any
//! thread exists.

use unidiff_studio::base::allocator::{give_back_freed_memory, keep_freed_memory};

/// Page faults this thread has taken so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> i64 {
    // SAFETY: getrusage writes only the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage.ru_minflt
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    keep_freed_memory();
    let worker = std::thread::spawn(|| {
        let live: Vec<u64> = (0..1 << 16).collect();
        let len = 64 << 20;
        let touch = |round: u8| {
            let mut block = vec![0u8; len];
            for page in block.chunks_mut(4096) {
                page[0] = round;
            }
            std::hint::black_box(&block);
        };
        touch(1);
        let before = minor_faults();
        touch(2);
        let pages = (len / 4096) as i64;
        let faults = minor_faults() - before;
        assert!(
            faults < pages / 4,
            "a freed block of 64 MiB asked for again: {faults} page faults for {pages} pages"
        );
        give_back_freed_memory();
        assert_eq!(live.iter().sum::<u64>(), (1u64 << 16) * ((1 << 16) - 1) / 2);
        println!(
            "allocator: a freed 64 MiB block came back with {faults} page faults ({pages} pages)"
        );
    });
    if worker.join().is_err() {
        std::process::exit(1);
    }
    println!("test result: ok. 1 passed");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    keep_freed_memory();
    give_back_freed_memory();
    println!("allocator: glibc only; nothing to check here");
}
