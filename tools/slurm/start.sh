#!/usr/bin/env bash
# Installs Debian's Slurm with munge and starts it as one node on localhost,
# without systemd: munged, then slurmctld and slurmd in the foreground (-D)
# in the background. For the Slurm test (tests/it/slurm.rs); `cargo test` never
# starts daemons. Idempotent: a running cluster is left as it is.
#   tools/slurm/start.sh      then: sinfo
set -euo pipefail
if ! command -v slurmctld > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge > /dev/null
fi
if sinfo -h -o %T 2> /dev/null | grep -q idle; then
    echo "slurm: already up"; exit 0
fi
host=$(hostname -s)
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2> /dev/null
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
pgrep -x munged > /dev/null || su -s /bin/sh munge -c /usr/sbin/munged
# RealMemory below what slurmd -C reports, as slurmd refuses a node that claims more.
mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
# The node's layout as slurmd itself sees it (sockets, cores, threads): a
# bare CPUs=$(nproc) on a machine with two threads a core claims twice its
# cores, and slurmctld drains such a node ("Low socket*core count").
layout=$(slurmd -C | grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' || true)
layout=${layout:-CPUs=$(nproc)}
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=squadlab
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
ReturnToService=2
MaxArraySize=1001
NodeName=$host $layout RealMemory=$(( mem * 9 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
pgrep -x slurmctld > /dev/null || (slurmctld -D > /var/log/slurm/slurmctld.out 2>&1 &)
pgrep -x slurmd > /dev/null || (slurmd -D > /var/log/slurm/slurmd.out 2>&1 &)
for _ in $(seq 1 60); do
    if sinfo -h -o %T 2> /dev/null | grep -qE "idle|mixed"; then
        echo "slurm: up ($(sinfo -h -o '%P %D %T'))"; exit 0
    fi
    sleep 0.5
done
echo "slurm: did not come up" >&2
tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
