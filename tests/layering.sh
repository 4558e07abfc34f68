#!/bin/sh
# The source layout's two rules, checked by `make check` (docs/HACKING.md):
#  1. Layers: common < registry < oci < shim < hub < agent. A file includes
#     headers of its own folder and of folders below it, never above.
#  2. A header whose comment begins "/* Private to <folder>/" serves only
#     its own folder (and the tests); every other header of a folder is its
#     public interface.
# Prints each include against the rules and exits 1 when there is one.
cd "$(dirname "$0")/.." || exit 2
layers="common registry oci shim hub agent"
files=$(for d in $layers; do ls "$d"/*.c "$d"/*.h 2>/dev/null; done)
# shellcheck disable=SC2086
awk -v layers="$layers" '
BEGIN {
	n = split(layers, l, " ")
	for (i = 1; i <= n; i++) rank[l[i]] = i
	order = layers; gsub(/ /, " < ", order)
}
FNR == 1 {
	dir = FILENAME; sub(/\/.*/, "", dir)
	if (FILENAME ~ /\.h$/ && match($0, /^\/\* Private to [a-z]+\//)) {
		p = substr($0, 15, RLENGTH - 15)
		private[FILENAME] = p
		if (p != dir) { print FILENAME ": says it is private to " p "/, but lives in " dir "/"; bad = 1 }
	}
}
/^#include "[a-z_]+\/[a-z_0-9]+\.h"/ {
	inc = $2; gsub(/"/, "", inc)
	d = inc; sub(/\/.*/, "", d)
	if (!(d in rank)) next
	if (rank[d] > rank[dir]) {
		print FILENAME ": includes " inc ", but " d "/ is above " dir "/ (" order ")"; bad = 1
	} else if (d != dir) {
		uses[FILENAME] = uses[FILENAME] " " inc
	}
}
END {
	for (f in uses) {
		m = split(uses[f], incs, " ")
		for (i = 1; i <= m; i++)
			if (incs[i] in private) { print f ": includes " incs[i] ", which is private to " private[incs[i]] "/"; bad = 1 }
	}
	if (!bad) print "layering: every include follows " order " and uses public headers only"
	exit bad
}' $files
