//! Why this exists: the U-Net's CPU forward allocates and frees activations
//! of tens of megabytes per layer, and glibc hands such blocks back to the
//! kernel when they are freed (blocks above its mmap threshold, and the
//! heap's free top). The next layer then faults the same pages in again and
//! the kernel zeroes them: about 790,000 page faults (3 GB of fresh pages)
//! per ImageNet-64 batch of 16, a tenth of its time. While the process
//! works it keeps freed memory for reuse; a background job that ends gives
//! it back, so an idle app does not hold a classification's peak.
//!
//! Other platforms and allocators keep their own policy (both calls do
//! nothing there).

/// Keeps freed memory in the allocator for reuse instead of returning it to
/// the kernel at once (glibc: one arena, the main heap, for every thread —
/// a thread's own arena maps blocks of 64 MiB and more afresh whatever the
/// settings —, no mmap'd blocks, no trimming of the heap's top). Call once,
/// first thing in `main`, before any thread starts; the peak use does not
/// change, only what stays held between allocations.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters (documented values:
        // M_ARENA_MAX 1 keeps every thread on the main arena, M_MMAP_MAX 0
        // disables mmap for large requests, M_TRIM_THRESHOLD -1 disables
        // trimming); it takes the allocator's own lock.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        }
    }
}

/// Returns the allocator's free memory to the kernel (every arena's free
/// pages, not only the heap's top): after a job, whatever it freed.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free pages; it takes each
        // arena's lock and never touches memory in use.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
