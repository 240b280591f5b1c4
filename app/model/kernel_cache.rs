//! GPU kernels compile once per machine: cubecl's autotune results and
//! compiled kernels live in the user's cache folder
//! (`~/.cache/unidiff-studio/cubecl`), not in the working directory's
//! `target/` that cubecl uses by default; and a marker per backend and
//! device says whether this machine has run it before, so that the first
//! use can be shown as its own phase ("compiling GPU kernels, first use
//! only") instead of a frozen ETA.

use std::path::PathBuf;

use super::lean_ops::UNetOps;

/// The progress phase of a GPU's first batch or step on this machine.
pub const PHASE_COMPILING: &str = "compiling GPU kernels, first use only";

pub use crate::base::data_dir::cache_dir;

/// Where cubecl keeps its caches.
pub fn kernel_cache_dir() -> PathBuf {
    cache_dir().join("cubecl")
}

/// Points cubecl's autotune and compilation caches at
/// [`kernel_cache_dir`]; once per process, before the first GPU use (a
/// cubecl configuration already read, from a `cubecl.toml` the user keeps
/// or an earlier use, stays as it is). The `CUBECL_*` environment variables
/// still apply.
pub fn use_kernel_cache() {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use burn::cubecl::config::cache::CacheConfig;
            use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
            let mut slot = CubeClRuntimeConfig::storage().lock();
            if slot.is_some() {
                return;
            }
            let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
            let dir = kernel_cache_dir();
            if matches!(config.autotune.cache, CacheConfig::Target) {
                config.autotune.cache = CacheConfig::File(dir.clone());
            }
            if config.compilation.cache.is_none() {
                config.compilation.cache = Some(CacheConfig::File(dir));
            }
            *slot = Some(std::sync::Arc::new(config));
        });
    }
}

/// The key of backend `B` on `device` when it is a GPU backend that has not
/// yet finished a batch on this machine (its first batch compiles kernels);
/// None on the CPU or once [`mark_used`].
pub fn pending_first_use<B: UNetOps>(device: &B::Device) -> Option<String> {
    (!B::ON_HOST)
        .then(|| backend_key(&B::name(device), device))
        .filter(|key| first_use(key))
}

/// Names a backend on a device, for [`first_use`] and [`mark_used`].
pub fn backend_key(backend: &str, device: &impl std::fmt::Debug) -> String {
    format!("{backend}-{device:?}")
}

/// The marker file of a backend on a device (`name` as burn's
/// `Backend::name` and the device's debug form give it).
pub fn marker(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    kernel_cache_dir().join(format!("used-{safe}"))
}

/// Whether `name` (backend and device) has not yet finished a batch on
/// this machine.
pub fn first_use(name: &str) -> bool {
    !marker(name).exists()
}

/// Records that `name` finished a batch (its kernels are in the cache); a
/// cache folder that cannot be written only means the next run shows the
/// compile phase again.
pub fn mark_used(name: &str) {
    let path = marker(name);
    if path.exists() {
        return;
    }
    let written = std::fs::create_dir_all(kernel_cache_dir())
        .and_then(|()| std::fs::write(&path, b"kernels compiled and tuned on this machine\n"));
    if let Err(e) = written {
        log::warn!(
            "could not record the GPU kernel cache in {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_name_is_a_plain_file_name() {
        let m = marker("fusion<cubecl<wgpu>>/DefaultDevice");
        let file = m.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        assert_eq!(file, "used-fusion_cubecl_wgpu___DefaultDevice");
        assert_eq!(m.parent(), Some(kernel_cache_dir().as_path()));
    }
}
