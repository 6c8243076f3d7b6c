#!/usr/bin/env bash
# The cluster integration test (test/cluster) starts its own one-node Slurm, munge and sshd; its
# stand-in training script and the bundle tests need a python3 (any, without packages).
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
need_packages "the cluster test (test/cluster)" slurmctld slurmd slurm-client munge openssh-server openssh-client
need_command python3 "the cluster and bundle tests" python3
