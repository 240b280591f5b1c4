#!/bin/bash
# A single-node Slurm on this machine for the job-array test
# (tests/slurm.rs) and for trying docs/cluster.md: munge, slurmctld and
# slurmd on localhost with their configuration, state and logs under DIR.
#
#   scripts/slurm_local.sh start DIR   # prints SLURM_CONF=DIR/slurm.conf
#   scripts/slurm_local.sh stop DIR
#
# Needs Debian's slurm-wlm and munge (`apt-get install slurm-wlm munge`)
# and root (the daemons run as root; the munge daemon as its own user).
set -euo pipefail
cmd=${1:?start or stop}
dir=$(realpath -m "${2:?a folder for the configuration, state and logs}")
conf="$dir/slurm.conf"

stop() {
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    # And whatever else runs on this configuration (slurmscriptd, a daemon
    # whose pid file was not written yet).
    pkill -f -- "-f $conf" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi

for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurm-wlm munge" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "the Slurm daemons need root" >&2; exit 2; }

mkdir -p "$dir/state" "$dir/spool"
# munge: one daemon per machine, started once.
if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -f /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- munged
fi

host=$(hostname -s)
# Ports of their own, so that another Slurm on this machine (or another
# test's) is never the one answering.
port=$((20000 + RANDOM % 20000))
cpus=$(nproc)
mem_mib=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
cat > "$conf" <<CONF
ClusterName=unidiff-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

stop
export SLURM_CONF="$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
# Ready when the node answers as idle.
for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then
        echo "SLURM_CONF=$conf"
        exit 0
    fi
    sleep 1
done
echo "the local Slurm did not come up; logs in $dir" >&2
sinfo >&2 || true
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
exit 1
