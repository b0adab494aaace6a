#!/usr/bin/env bash
# One line naming this machine, for the RESULTS of a sweep run on it: CPU cores and model, and
# the GPU if there is one. run.sh scripts save it beside their sweeps, so a report rebuilt
# elsewhere (--report-only) still names the machine the runs ran on.
cpu="$(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
if [ -n "$gpu" ]; then echo "$cpu, one $gpu GPU"; else echo "$cpu, no GPU"; fi
