#!/bin/bash
# The unpacking half of a pull, on its own: one uncompressed layer of about
# 200 MB and 12,000 files extracted by berth's layer_unpack, by GNU tar and by
# umoci (raw unpack of the same layer from an OCI layout), each followed by a
# syncfs, in turns on a loop-mounted ext4 file system. Prints medians, ratios
# and peak RSS.
#
#   bench/unpack.sh               (as root; RUNS=7 for more turns)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$HERE/..
RUNS=${RUNS:-5}

[ "$(id -u)" = 0 ] || { echo "unpack.sh: run as root (loop mount, owners)" >&2; exit 1; }
for t in tar umoci mkfs.ext4 /usr/bin/time /usr/bin/python3 cc pkg-config; do
	command -v "$t" >/dev/null || { echo "unpack.sh: $t is missing (make deps)" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/berth-bench-unpack.XXXXXX)
MNT=$WORK/mnt
cleanup() {
	set +e
	mountpoint -q "$MNT" && umount "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the unpacker, as berth pull calls it ------------------------------------
make -s -C "$TOP" build/libberth.a
cc -O2 -D_GNU_SOURCE -I"$TOP" -o "$WORK/unpack_layer" "$HERE/unpack_layer.c" \
	"$TOP/build/libberth.a" $(pkg-config --libs yajl libseccomp libcap) -ldl -lpthread

# ---- the layer, and an OCI layout holding it for umoci -------------------------
/usr/bin/python3 - "$WORK" <<'PY'
import hashlib, io, json, os, random, sys, tarfile
work = sys.argv[1]
rnd = random.Random(20240601)
buf = io.BytesIO()
files = size = 0
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    def add(name, kind, data=b"", mode=0o644):
        ti = tarfile.TarInfo(name)
        ti.mode, ti.mtime, ti.uname, ti.gname = mode, 1700000000, "", ""
        if kind == "dir":
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        else:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    for top in ("usr", "usr/lib", "usr/share"):
        add(top, "dir")
    for d in range(400):
        base = "usr/%s/pkg%03d" % ("lib" if d % 2 else "share", d // 4)
        if d % 4 == 0:
            add(base, "dir")
        sub = "%s/sub%d" % (base, d % 4)
        add(sub, "dir")
        for f in range(30):
            n = min(int(rnd.expovariate(1 / 16000)), 2 << 20)
            add("%s/file%02d" % (sub, f), "file", rnd.randbytes(n), 0o755 if f % 7 == 0 else 0o644)
            files += 1
            size += n
raw = buf.getvalue()
with open(os.path.join(work, "layer.tar"), "wb") as f:
    f.write(raw)
lay = os.path.join(work, "layout")
os.makedirs(os.path.join(lay, "blobs", "sha256"))
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(lay, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
diff, rsize = put(raw)
cfg, csize = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode())
man, msize = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff,
                "size": rsize}]}).encode())
with open(os.path.join(lay, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(lay, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType":
        "application/vnd.oci.image.manifest.v1+json", "digest": man, "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
print("layer: %d files, %.0f MB of content, %.0f MB tar" % (files, size / 1e6, len(raw) / 1e6))
PY

# ---- a file system of its own ----------------------------------------------------
mkdir -p "$MNT"
truncate -s 3G "$WORK/fs.img"
mkfs.ext4 -q -F "$WORK/fs.img"
mount -o loop "$WORK/fs.img" "$MNT"

# run NAME CMD...: one timed turn into an empty $MNT/out; appends "secs kb".
run() {
	local name=$1
	shift
	rm -rf "$MNT/out"
	sync
	/usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null
	cat "$WORK/time" >>"$WORK/$name.times"
	rm -rf "$MNT/out"
}
berth_unpack() { mkdir "$MNT/out" && "$WORK/unpack_layer" "$WORK/layer.tar" "$MNT/out"; }
gnu_tar() { mkdir "$MNT/out" && tar -xpf "$WORK/layer.tar" -C "$MNT/out" && sync -f "$MNT/out"; }
umoci_raw() {
	umoci raw unpack --image "$WORK/layout:1" "$MNT/out" 2>/dev/null && sync -f "$MNT/out"
}
export -f berth_unpack gnu_tar umoci_raw
export WORK MNT

# Warm the page cache with the inputs, then take turns so drift hits all alike.
cat "$WORK/layer.tar" "$WORK"/layout/blobs/sha256/* >/dev/null
for i in $(seq "$RUNS"); do
	run berth bash -c berth_unpack
	run tar bash -c gnu_tar
	run umoci bash -c umoci_raw
done

/usr/bin/python3 - "$WORK" "$RUNS" <<'PY'
import statistics, sys
work, runs = sys.argv[1], sys.argv[2]
res = {}
for n in ("berth", "tar", "umoci"):
    rows = [l.split() for l in open("%s/%s.times" % (work, n)) if l.strip()]
    res[n] = (statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows))
print("median of %s turns (extract + syncfs):" % runs)
for n, label in (("berth", "berth layer_unpack"), ("tar", "GNU tar -xp"), ("umoci", "umoci raw unpack")):
    print("  %-20s %6.2f s   peak RSS %6.1f MB" % (label, res[n][0], res[n][1] / 1024))
print("berth / GNU tar: %.2f" % (res["berth"][0] / res["tar"][0]))
print("berth / umoci:   %.2f" % (res["berth"][0] / res["umoci"][0]))
PY
