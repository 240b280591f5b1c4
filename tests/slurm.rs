//! A region mapped by a real scheduler: a single-node Slurm on this machine
//! (`scripts/slurm_local.sh`: munge, slurmctld and slurmd on localhost), a
//! model trained on the demo scene, `sbatch --array=0-3` running `predict
//! --shard $SLURM_ARRAY_TASK_ID/4`, then `mosaic` of the four parts: the
//! same map as the run that trained the model, pixel for pixel. Needs
//! Debian's slurm-wlm and munge and root (CI installs them); without them
//! the test says so and returns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{demo, repo};

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{err}");
    text + &err
}

fn band(path: &Path) -> Vec<u8> {
    let ds = gdal::Dataset::open(path).unwrap();
    ds.rasterband(1)
        .unwrap()
        .read_band_as::<u8>()
        .unwrap()
        .data()
        .to_vec()
}

/// Stops the local Slurm when the test ends, passed or not.
struct LocalSlurm<'a>(&'a Path);

impl Drop for LocalSlurm<'_> {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/slurm_local.sh"))
            .arg("stop")
            .arg(self.0)
            .output();
    }
}

#[test]
fn a_slurm_job_array_maps_the_scene_in_shards_that_mosaic_to_the_run() {
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(have("slurmctld") && have("slurmd") && have("sbatch") && have("munged") && is_root) {
        eprintln!(
            "skipped: a local Slurm needs slurm-wlm and munge (apt-get install slurm-wlm munge) and root"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slurm_dir = dir.path().join("slurm");
    let started = ok(Command::new("bash")
        .arg(repo().join("scripts/slurm_local.sh"))
        .arg("start")
        .arg(&slurm_dir)
        .output()
        .unwrap());
    let _stop = LocalSlurm(&slurm_dir);
    let conf = slurm_dir.join("slurm.conf");
    assert!(started.contains("SLURM_CONF="), "{started}");

    let bin = env!("CARGO_BIN_EXE_unidiff-studio");
    let run = dir.path().join("run");
    let model = dir.path().join("demo.udmodel");
    ok(Command::new(bin)
        .args([
            "run",
            "--demo",
            "--stride",
            "32",
            "--t",
            "0",
            "--no-baseline",
        ])
        .args(["--no-held-out-check", "--save-model"])
        .arg(&model)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());

    // The job script a user adapts (docs/cluster.md), with this checkout's
    // binary and the demo's inputs.
    let script = dir.path().join("predict-array.sbatch");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             #SBATCH --job-name=unidiff-predict\n\
             #SBATCH --output={out}/slurm_%A_%a.log\n\
             set -euo pipefail\n\
             N=$SLURM_ARRAY_TASK_COUNT\n\
             '{bin}' --threads 1 predict --model '{model}' --hsi '{hsi}' --sar '{sar}' \\\n\
             --tile 160 --shard \"$SLURM_ARRAY_TASK_ID/$N\" --out \"{out}/parts/$SLURM_ARRAY_TASK_ID\"\n",
            out = dir.path().display(),
            model = model.display(),
            hsi = demo("Spain_7370579_S2Hand.tif").display(),
            sar = demo("Spain_7370579_S1Hand.tif").display(),
        ),
    )
    .unwrap();
    let submitted = ok(Command::new("sbatch")
        .env("SLURM_CONF", &conf)
        .args(["--wait", "--array=0-3"])
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap());
    assert!(submitted.contains("Submitted batch job"), "{submitted}");

    let parts: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("parts/{i}")))
        .collect();
    for p in &parts {
        assert!(
            p.join("predict.json").exists(),
            "{} did not finish",
            p.display()
        );
    }
    let joined = dir.path().join("map");
    ok(Command::new(bin)
        .arg("mosaic")
        .args(&parts)
        .arg("--out")
        .arg(&joined)
        .output()
        .unwrap());
    assert_eq!(
        band(&joined.join("classmap.tif")),
        band(&run.join("classmap.tif"))
    );
}
