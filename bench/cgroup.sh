#!/bin/sh
# Medians of the cgroup steps of an instance's life, on the layouts this
# machine offers: the full root (v1 controllers, or hybrid, or v2) and, on a
# hybrid machine, its cgroup2 hierarchy alone as a v2 root. Run as root.
#   bench/cgroup.sh [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-200}
make -s build/libberth.a
cc -std=gnu11 -D_GNU_SOURCE -O2 -I. -o build/cgroup_bench bench/cgroup_bench.c \
	build/libberth.a $(pkg-config --libs libseccomp libcap yajl) -ldl -lpthread
build/cgroup_bench /sys/fs/cgroup "$rounds"
if [ -d /sys/fs/cgroup/unified ] && [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
	build/cgroup_bench /sys/fs/cgroup/unified "$rounds"
fi
