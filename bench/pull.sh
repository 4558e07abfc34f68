#!/bin/bash
# Cold pull of a 4-layer image (about 200 MB, 12,000 files) from a local
# registry: berth pull vs skopeo copy + umoci unpack vs podman pull, run in
# turns on a loop-mounted ext4 file system, with medians, ratios and the
# peak RSS of berth pull.
#
#   bench/pull.sh                 (as root; RUNS=5 for more turns)
#
# The image is built once and kept with the registry's storage in
# $BERTH_BENCH_CACHE (default /var/tmp/berth-bench-pull-cache).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=${BERTH:-$HERE/../build/berth}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-berth skopeo_umoci podman} # a subset for quick experiments
CACHE=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench-pull-cache}
REPO=bench/pull
TAG=1

[ "$(id -u)" = 0 ] || { echo "pull.sh: run as root (loop mount, podman storage)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "pull.sh: build berth first (make)" >&2; exit 1; }
for t in docker-registry skopeo umoci podman mkfs.ext4 /usr/bin/time python3; do
	command -v "$t" >/dev/null || { echo "pull.sh: $t is missing (make deps)" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/berth-bench-pull.XXXXXX)
MNT=$WORK/mnt
REG_PID=
cleanup() {
	set +e
	[ -n "$REG_PID" ] && kill "$REG_PID" && wait "$REG_PID" 2>/dev/null
	if mountpoint -q "$MNT"; then
		{ findmnt -rn -o TARGET | grep "^$MNT/" || true; } | sort -r | xargs -r -n1 umount -l
		umount "$MNT"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the image (built once) ---------------------------------------------------
mkdir -p "$CACHE"
if [ ! -f "$CACHE/layout/index.json" ]; then
	echo "building the benchmark image in $CACHE/layout (once)..."
	rm -rf "$CACHE/layout" "$CACHE/registry" "$CACHE/pushed"
	/usr/bin/python3 - "$CACHE/layout" <<'EOF'
import gzip, hashlib, io, json, os, random, subprocess, sys, tarfile
out = sys.argv[1]
os.makedirs(os.path.join(out, "blobs", "sha256"))
rnd = random.Random(20240601)
words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"edge", b"module", b"berth",
         b"sensor", b"value", b"0x7f", b"config", b"\n", b"{", b"}", b"=", b"; "]

def content(n, i):
    if i % 2:  # binaries: compress poorly
        return rnd.randbytes(n)
    parts, size = [], 0
    while size < n:
        w = words[rnd.randrange(len(words))]
        parts.append(w)
        size += len(w)
    return b" ".join(parts)[:n]

def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d

layers, diff_ids = [], []
for l in range(4):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = ["usr/lib/pkg%d_%d/sub%d" % (l, p, s) for p in range(30) for s in range(4)]
        made = set()
        for d in dirs:
            parts = d.split("/")
            for k in range(1, len(parts) + 1):
                p = "/".join(parts[:k])
                if p not in made:
                    made.add(p)
                    ti = tarfile.TarInfo(p)
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                    tf.addfile(ti)
        for i in range(3000):
            size = rnd.randint(150_000, 250_000) if i % 30 == 0 else rnd.randint(500, 23_000)
            data = content(size, i)
            ti = tarfile.TarInfo("%s/f%04d%s" % (dirs[i % len(dirs)], i, ".so" if i % 2 else ".txt"))
            ti.size, ti.mode, ti.mtime = len(data), 0o755 if i % 2 else 0o644, 1700000000
            tf.addfile(ti, io.BytesIO(data))
    raw = raw.getvalue()
    blob = gzip.compress(raw, compresslevel=6, mtime=0)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(blob), "size": len(blob)})
    print("  layer %d: %.1f MB, %.1f MB compressed" % (l, len(raw) / 1e6, len(blob) / 1e6))
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": put(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
md = put(man)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
EOF
fi

# ---- the registry (storage kept in the cache) -----------------------------------
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
REF=$HOST/$REPO:$TAG
mkdir -p "$CACHE/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $CACHE/registry } }
http: { addr: $HOST }
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
	curl -fs "http://$HOST/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
if [ ! -f "$CACHE/pushed" ]; then
	skopeo copy --quiet --dest-tls-verify=false "oci:$CACHE/layout:1" "docker://$REF"
	touch "$CACHE/pushed"
fi

# ---- a fresh ext4 to pull into ------------------------------------------------------
# (the root file system is mounted with discard, which slows writes after
# large deletions and would blur the comparison)
truncate -s 8G "$WORK/fs.img"
mkfs.ext4 -q -F "$WORK/fs.img"
mkdir -p "$MNT"
mount -o loop "$WORK/fs.img" "$MNT"

cat >"$WORK/registries.conf" <<EOF
[[registry]]
location = "$HOST"
insecure = true
EOF

now() { date +%s.%N; }
clean() {
	{ findmnt -rn -o TARGET | grep "^$MNT/" || true; } | sort -r | xargs -r -n1 umount -l
	rm -rf "$MNT/berth" "$MNT/oci" "$MNT/bundle" "$MNT/podman-root" "$MNT/podman-run"
	sync
}

run_berth() {
	/usr/bin/time -v -o "$WORK/time.txt" "$BERTH" --root "$MNT/berth" pull --insecure --quiet \
		"$REF" >/dev/null
	awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt" >>"$WORK/rss"
}
run_skopeo_umoci() {
	skopeo copy --quiet --src-tls-verify=false "docker://$REF" "oci:$MNT/oci:bench"
	umoci unpack --image "$MNT/oci:bench" "$MNT/bundle" >/dev/null
}
run_podman() {
	CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf \
		podman --root "$MNT/podman-root" --runroot "$MNT/podman-run" --storage-driver overlay \
		pull --quiet "$REF" >/dev/null
}

declare -A times
for i in $(seq "$RUNS"); do
	for tool in $TOOLS; do
		clean
		t0=$(now)
		"run_$tool"
		t1=$(now)
		times[$tool]+="$(echo "$t1 - $t0" | bc -l) "
	done
	echo "run $i:$(for t in $TOOLS; do printf ' %s %.2f s' "$t" "$(echo "${times[$t]}" | awk '{print $NF}')"; done)"
done
clean

/usr/bin/python3 - "${times[berth]:-}" "${times[skopeo_umoci]:-}" "${times[podman]:-}" \
	"$(cat "$WORK/rss" 2>/dev/null)" "$RUNS" <<'EOF'
import statistics, sys
b, s, p = ([float(x) for x in a.split()] for a in sys.argv[1:4])
med = lambda v: statistics.median(v) if v else None
mb, ms, mp = med(b), med(s), med(p)
print("")
print("cold pull, 4 layers, ~200 MB, 12,000 files (medians of %s runs)" % sys.argv[5])
for name, m in (("berth pull", mb), ("skopeo copy + umoci", ms), ("podman pull", mp)):
    if m is not None:
        print("  %-24s%6.2f s" % (name, m))
if mb and ms:
    print("  berth / skopeo+umoci    %6.2f   (target <= 0.35)" % (mb / ms))
if mb and mp:
    print("  berth / podman          %6.2f   (target <= 0.60)" % (mb / mp))
if sys.argv[4].split():
    rss = max(int(x) for x in sys.argv[4].split()) / 1024
    print("  berth peak RSS          %6.1f MB (target <= 16 MB)" % rss)
EOF
