#!/bin/sh
# Time to run /bin/true in a fresh instance of a local image:
#   berth run --rm REF /bin/true      (overlay of the image's layers)
#   berth oci run --bundle B ID       (the bundle below)
#   crun run ID, runc run ID          (the same bundle)
# The bundle is `berth export` of the image with the config.json `crun spec`
# writes (args /bin/true, no terminal). The four are alternated, run after
# run, so load from other work on the machine hits them alike; medians and
# ratios are printed. crun 1.8 refuses this machine's hybrid cgroup layout,
# so its runs happen in a mount namespace where /sys/fs/cgroup/unified is
# unmounted (entered with setns, so no extra process is timed).
# Also measures the resident memory of one shim (RSS and PSS).
#
#   bench/start.sh [RUNS]      (default 200; needs root, docker-registry, skopeo,
#                               crun, runc, python3; build berth first)
set -eu
RUNS=${1:-200}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$TOP/build/berth}
[ -x "$BERTH" ] || { echo "build berth first (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/berth-bench-start.XXXXXX)
NS_PID=
REG_PID=
cleanup() {
	[ -n "$NS_PID" ] && kill "$NS_PID" 2>/dev/null
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
	"$BERTH" --root "$WORK/root" shim stop --grace 0 "$SHIM_NAME" >/dev/null 2>&1 || true
	"$BERTH" --root "$WORK/root" shim rm "$SHIM_NAME" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
SUFFIX=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
SHIM_NAME=bench-shim-$SUFFIX
trap cleanup EXIT INT TERM

# A registry on a free loopback port with a busybox-static image in it.
TOP=$TOP /usr/bin/python3 - "$WORK" > "$WORK/registry.env" <<'EOF'
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "e2e"))
import conftest, images
work = sys.argv[1]
reg = conftest.Registry(os.path.join(work, "registry"))
images.push_image(work, reg.host, "bench-busybox", "1", [images.Layer(images.busybox_layer())])
print("REG=%s REG_PID=%d" % (reg.host, reg.proc.pid))
# Leave the registry running for the pull; the shell stops it.
os._exit(0)
EOF
. "$WORK/registry.env"
REF=$REG/bench-busybox:1
"$BERTH" --root "$WORK/root" --run "$WORK/run" pull --insecure --quiet "$REF" >/dev/null
kill "$REG_PID" 2>/dev/null || true
REG_PID=

mkdir -p "$WORK/bundle/rootfs"
"$BERTH" --root "$WORK/root" export "$REF" "$WORK/bundle/rootfs"
(cd "$WORK/bundle" && crun spec && /usr/bin/python3 - <<'EOF'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open("config.json", "w"), indent=1)
EOF
)

# The mount namespace crun runs in.
unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec sleep 100000' &
NS_PID=$!
sleep 0.2

# One detached instance: the shim's memory.
SPEC=$WORK/shim-spec.json
"$BERTH" --root "$WORK/root" inspect "$REF" | /usr/bin/python3 -c '
import json, sys
img = json.load(sys.stdin)
json.dump({"name": sys.argv[1], "layer_dirs": img["layers"], "args": ["/bin/sleep", "600"],
           "env": ["PATH=/bin"]}, open(sys.argv[2], "w"))' "$SHIM_NAME" "$SPEC"
SHIM_PID=$("$BERTH" --root "$WORK/root" --run "$WORK/run" shim start "$SPEC")
sleep 0.3
SHIM_RSS=$(awk '/^VmRSS:/ {print $2}' /proc/"$SHIM_PID"/status)
SHIM_PSS=$(awk '/^Pss:/ {print $2}' /proc/"$SHIM_PID"/smaps_rollup)

BERTH=$BERTH WORK=$WORK REF=$REF NS_PID=$NS_PID RUNS=$RUNS SUFFIX=$SUFFIX \
SHIM_RSS=$SHIM_RSS SHIM_PSS=$SHIM_PSS /usr/bin/python3 - <<'EOF'
import ctypes, os, statistics, subprocess, sys, time

berth, work, ref = os.environ["BERTH"], os.environ["WORK"], os.environ["REF"]
runs, suffix = int(os.environ["RUNS"]), os.environ["SUFFIX"]
bundle = os.path.join(work, "bundle")
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
own_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
crun_ns = os.open("/proc/%s/ns/mnt" % os.environ["NS_PID"], os.O_RDONLY)

def setns(fd):
    if libc.setns(fd, CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "setns")

def berth_run(i):
    return [berth, "--root", os.path.join(work, "root"), "--run", os.path.join(work, "run"),
            "run", "--rm", "--name", "br-%s-%d" % (suffix, i), ref, "/bin/true"], None

def berth_oci(i):
    return [berth, "--root", os.path.join(work, "root"), "oci", "run", "--bundle", bundle,
            "bo-%s-%d" % (suffix, i)], None

def crun(i):
    return ["crun", "run", "--bundle", bundle, "cr-%s-%d" % (suffix, i)], crun_ns

def runc(i):
    return ["runc", "run", "--bundle", bundle, "rc-%s-%d" % (suffix, i)], None

cases = [("berth run --rm", berth_run), ("berth oci run", berth_oci), ("crun run", crun),
         ("runc run", runc)]
times = {name: [] for name, _ in cases}

def once(fn, i, check=False):
    argv, ns = fn(i)
    if ns is not None:
        setns(ns)
    try:
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE if check else subprocess.DEVNULL)
        dt = time.perf_counter() - t0
    finally:
        if ns is not None:
            setns(own_ns)
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), p.returncode,
                                          (p.stderr or b"").decode(errors="replace")))
    return dt

for name, fn in cases:          # warm-up, and a check that each one works
    for i in range(3):
        once(fn, -1 - i, check=True)
for i in range(runs):
    for name, fn in cases[i % 4:] + cases[:i % 4]:
        times[name].append(once(fn, i))

med = {n: statistics.median(t) * 1000 for n, t in times.items()}
print("start of /bin/true, %d runs each, alternated (ms)" % runs)
print("%-16s %8s %8s %8s %8s" % ("", "median", "p10", "p90", "min"))
for name, _ in cases:
    t = sorted(times[name])
    print("%-16s %8.2f %8.2f %8.2f %8.2f" % (name, med[name], t[len(t) // 10] * 1000,
                                               t[len(t) * 9 // 10] * 1000, t[0] * 1000))
for b in ("berth run --rm", "berth oci run"):
    print("%-16s %.2f x crun, %.2f x runc" % (b, med[b] / med["crun run"], med[b] / med["runc run"]))
print("shim resident: RSS %s kB, PSS %s kB" % (os.environ["SHIM_RSS"], os.environ["SHIM_PSS"]))
EOF
