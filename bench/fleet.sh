#!/bin/sh
# A fleet of N devices (default 20) in network namespaces, managed from one
# IoT Hub stand-in: how long a deployment takes to converge on all of them
# (see bench/fleet.py and docs/BENCHMARKS.md).
#   bench/fleet.sh [N] [ROUNDS]     (root; build berth first; tests/install-deps.sh)
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$TOP/build/berth}
[ -x "$BERTH" ] || { echo "build berth first (make)" >&2; exit 1; }
exec /usr/bin/python3 "$TOP/bench/fleet.py" "$BERTH" "${1:-20}" "${2:-1}"
