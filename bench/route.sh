#!/bin/sh
# Route compilation and matching micro-benchmark (see docs/BENCHMARKS.md).
#   bench/route.sh [ITERATIONS]
set -eu
# yajl is linked statically here so that its allocations are counted too.
cd "$(dirname "$0")/.."
make -s build/libberth.a
mkdir -p build/bench
${CC:-cc} -std=gnu11 -D_GNU_SOURCE -O2 -I. -o build/bench/route_bench bench/route_bench.c \
	build/libberth.a -l:libyajl_s.a $(pkg-config --libs libseccomp libcap) -ldl -lpthread -lm \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
exec build/bench/route_bench "$@"
