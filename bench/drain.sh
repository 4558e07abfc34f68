#!/bin/sh
# A stored backlog drained to a local mosquitto after the link returns, berth's
# hub against a mosquitto bridge in the same run (see bench/drain.py and
# docs/BENCHMARKS.md).
#   bench/drain.sh [N] [ROUNDS]     (default 100000 messages, 2 rounds; root;
#                                     build berth first; mosquitto installed)
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$TOP/build/berth}
[ -x "$BERTH" ] || { echo "build berth first (make)" >&2; exit 1; }
exec /usr/bin/python3 "$TOP/bench/drain.py" "$BERTH" "${1:-100000}" "${2:-2}"
