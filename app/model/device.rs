//! Where the model runs: the user's choice (auto, CPU, CUDA, wgpu) resolved
//! against what this build has and what the machine answers, with the reason
//! in plain words. The CPU is always there; CUDA and wgpu exist only in
//! builds with the `cuda` / `wgpu` features, and a GPU that does not answer
//! (no driver, no device) falls back to the CPU with a message that says so.

use serde::{Deserialize, Serialize};

/// What the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// CUDA, else wgpu, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Wgpu,
}

impl DeviceChoice {
    pub const ALL: [DeviceChoice; 4] = [
        DeviceChoice::Auto,
        DeviceChoice::Cpu,
        DeviceChoice::Cuda,
        DeviceChoice::Wgpu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "CPU",
            DeviceChoice::Cuda => "CUDA",
            DeviceChoice::Wgpu => "wgpu",
        }
    }

    /// Whether this build has the backend (auto and the CPU always).
    pub fn compiled(self) -> bool {
        match self {
            DeviceChoice::Auto | DeviceChoice::Cpu => true,
            DeviceChoice::Cuda => cfg!(feature = "cuda"),
            DeviceChoice::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

/// The backend a job will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda,
    #[cfg(feature = "wgpu")]
    Wgpu,
}

impl Resolved {
    pub fn name(self) -> &'static str {
        match self {
            Resolved::Cpu => "CPU",
            #[cfg(feature = "cuda")]
            Resolved::Cuda => "CUDA",
            #[cfg(feature = "wgpu")]
            Resolved::Wgpu => "wgpu",
        }
    }
}

/// The device used and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    pub resolved: Resolved,
    pub why: String,
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".to_string())
}

/// Runs one small tensor operation on backend `B`; the error when the
/// device does not answer (the GPU runtimes panic when there is no driver).
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe<B: burn::tensor::backend::Backend>(device: &B::Device) -> Result<(), String> {
    use burn::tensor::Tensor;
    let device = device.clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let t = Tensor::<B, 1>::ones([4], &device);
        t.sum().into_scalar();
    }))
    .map_err(|p| panic_message(p.as_ref()))
}

#[cfg(feature = "cuda")]
fn try_cuda() -> Result<Resolved, String> {
    probe::<burn::backend::Cuda>(&Default::default()).map(|()| Resolved::Cuda)
}

#[cfg(not(feature = "cuda"))]
fn try_cuda() -> Result<Resolved, String> {
    Err("this build has no CUDA backend (build with `--features cuda`)".into())
}

/// A wgpu adapter: its name and whether it is a software renderer (Mesa's
/// lavapipe/llvmpipe, SwiftShader), which runs the U-Net slower than the
/// CPU kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgpuAdapter {
    pub name: String,
    pub software: bool,
}

/// The adapters wgpu sees on the backends burn's wgpu uses (Vulkan, Metal,
/// DX12); none when the runtime has no driver at all. Listed once per
/// process.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<WgpuAdapter> {
    static ADAPTERS: std::sync::OnceLock<Vec<WgpuAdapter>> = std::sync::OnceLock::new();
    ADAPTERS.get_or_init(list_wgpu_adapters).clone()
}

#[cfg(feature = "wgpu")]
fn list_wgpu_adapters() -> Vec<WgpuAdapter> {
    std::panic::catch_unwind(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .iter()
            .map(|a| {
                let info = a.get_info();
                WgpuAdapter {
                    name: info.name,
                    software: info.device_type == wgpu::DeviceType::Cpu,
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(not(feature = "wgpu"))]
pub fn wgpu_adapters() -> Vec<WgpuAdapter> {
    Vec::new()
}

/// wgpu, when an adapter answers: a GPU, or with `software_too` a software
/// renderer as well (chosen explicitly, or for tests); the adapter's name.
#[cfg(feature = "wgpu")]
fn try_wgpu(software_too: bool) -> Result<(Resolved, String), String> {
    let adapters = wgpu_adapters();
    let usable = adapters
        .iter()
        .find(|a| !a.software)
        .or_else(|| adapters.iter().find(|_| software_too));
    let Some(adapter) = usable else {
        return Err(match adapters.first() {
            Some(a) => format!(
                "wgpu found only the software renderer {} (slower than the CPU kernels)",
                a.name
            ),
            None => "wgpu found no GPU adapter (no Vulkan, Metal or DX12 driver)".into(),
        });
    };
    probe::<burn::backend::Wgpu>(&Default::default())
        .map(|()| (Resolved::Wgpu, adapter.name.clone()))
        .map_err(|e| format!("wgpu on {} did not answer: {e}", adapter.name))
}

#[cfg(not(feature = "wgpu"))]
fn try_wgpu(_software_too: bool) -> Result<(Resolved, String), String> {
    Err("this build has no wgpu backend (build with `--features wgpu`)".into())
}

/// Resolves `choice`: the device that will run, and why. Auto passes over
/// software renderers; the GPU kernel caches are set up first
/// ([`super::kernel_cache::use_kernel_cache`]).
pub fn resolve(choice: DeviceChoice) -> DeviceReport {
    super::kernel_cache::use_kernel_cache();
    let cpu = |why: String| DeviceReport {
        resolved: Resolved::Cpu,
        why,
    };
    let gpu = |resolved: Resolved, why: String| DeviceReport { resolved, why };
    match choice {
        DeviceChoice::Cpu => cpu("the CPU, as chosen".into()),
        DeviceChoice::Cuda => match try_cuda() {
            Ok(r) => gpu(r, "CUDA, as chosen".into()),
            Err(e) => cpu(format!(
                "CUDA chosen but not usable: {e}; running on the CPU"
            )),
        },
        DeviceChoice::Wgpu => match try_wgpu(true) {
            Ok((r, name)) => gpu(r, format!("wgpu on {name}, as chosen")),
            Err(e) => cpu(format!(
                "wgpu chosen but not usable: {e}; running on the CPU"
            )),
        },
        DeviceChoice::Auto => match try_cuda() {
            Ok(r) => gpu(r, "CUDA (a GPU answered)".into()),
            Err(cuda) => match try_wgpu(false) {
                Ok((r, name)) => gpu(r, format!("wgpu on {name} (CUDA: {cuda})")),
                Err(wgpu) => cpu(format!("the CPU: {cuda}; {wgpu}")),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_this_build_lacks_runs_on_the_cpu_and_says_why() {
        if !cfg!(feature = "cuda") {
            let cuda = resolve(DeviceChoice::Cuda);
            assert_eq!(cuda.resolved, Resolved::Cpu);
            assert!(
                cuda.why
                    .starts_with("CUDA chosen but not usable: this build has no CUDA backend"),
                "{}",
                cuda.why
            );
            assert!(!DeviceChoice::Cuda.compiled());
        }
        if !cfg!(feature = "wgpu") {
            let wgpu = resolve(DeviceChoice::Wgpu);
            assert_eq!(wgpu.resolved, Resolved::Cpu);
            assert!(wgpu.why.contains("no wgpu backend"), "{}", wgpu.why);
        }
        assert_eq!(resolve(DeviceChoice::Cpu).why, "the CPU, as chosen");
        assert!(DeviceChoice::Cpu.compiled() && DeviceChoice::Auto.compiled());
    }
}
