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

#[cfg(feature = "wgpu")]
fn try_wgpu() -> Result<Resolved, String> {
    probe::<burn::backend::Wgpu>(&Default::default()).map(|()| Resolved::Wgpu)
}

#[cfg(not(feature = "wgpu"))]
fn try_wgpu() -> Result<Resolved, String> {
    Err("this build has no wgpu backend (build with `--features wgpu`)".into())
}

/// Resolves `choice`: the device that will run, and why.
pub fn resolve(choice: DeviceChoice) -> DeviceReport {
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
        DeviceChoice::Wgpu => match try_wgpu() {
            Ok(r) => gpu(r, "wgpu, as chosen".into()),
            Err(e) => cpu(format!(
                "wgpu chosen but not usable: {e}; running on the CPU"
            )),
        },
        DeviceChoice::Auto => match try_cuda() {
            Ok(r) => gpu(r, "CUDA (a GPU answered)".into()),
            Err(cuda) => match try_wgpu() {
                Ok(r) => gpu(r, format!("wgpu (CUDA: {cuda})")),
                Err(wgpu) => cpu(format!("the CPU: {cuda}; {wgpu}")),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_gpu_features_every_choice_runs_on_the_cpu_and_says_why() {
        if cfg!(any(feature = "cuda", feature = "wgpu")) {
            return;
        }
        let auto = resolve(DeviceChoice::Auto);
        assert_eq!(auto.resolved, Resolved::Cpu);
        assert!(auto.why.contains("no CUDA backend") && auto.why.contains("no wgpu backend"));
        let cuda = resolve(DeviceChoice::Cuda);
        assert_eq!(cuda.resolved, Resolved::Cpu);
        assert!(
            cuda.why
                .starts_with("CUDA chosen but not usable: this build has no CUDA backend"),
            "{}",
            cuda.why
        );
        assert_eq!(resolve(DeviceChoice::Cpu).why, "the CPU, as chosen");
        assert!(!DeviceChoice::Cuda.compiled() && DeviceChoice::Cpu.compiled());
    }
}
