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
# Then module starts through `berth daemon`, from `berth deploy` to the
# module's program running (it writes to a FIFO the script waits on): on the
# host's network, on a bridge network that has a module already, and as the
# first module of a bridge network (the bridge is made for it), alternated
# with `crun run` of the bundle above; medians, ratios, and the CNI ADD and
# DEL times from the daemon's log. The networks get a 10.x.y.0/24 no route
# of the host overlaps.
#
#   bench/start.sh [RUNS [MODULE_RUNS]]   (default 200 and 40; needs root,
#                               docker-registry, skopeo, crun, runc, python3,
#                               containernetworking-plugins; build berth first)
set -eu
RUNS=${1:-200}
MODULE_RUNS=${2:-40}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$TOP/build/berth}
[ -x "$BERTH" ] || { echo "build berth first (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/berth-bench-start.XXXXXX)
NS_PID=
REG_PID=
cleanup() {
	# A daemon left by a failed run stops its modules and their networks.
	if [ -f "$WORK/daemon.pid" ]; then
		DAEMON_PID=$(cat "$WORK/daemon.pid")
		if kill "$DAEMON_PID" 2>/dev/null; then
			while kill -0 "$DAEMON_PID" 2>/dev/null; do sleep 0.1; done
		fi
	fi
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

# Module starts through the daemon.
"$BERTH" --root "$WORK/root" --run "$WORK/run" shim stop --grace 0 "$SHIM_NAME" >/dev/null 2>&1 || true
mkdir -p "$WORK/drun" "$WORK/marks"
mkfifo "$WORK/marks/started"
BERTH=$BERTH WORK=$WORK REF=$REF NS_PID=$NS_PID MODULE_RUNS=$MODULE_RUNS SUFFIX=$SUFFIX \
/usr/bin/python3 - <<'EOF'
import ctypes, ipaddress, json, os, random, re, select, statistics, subprocess, sys, time

berth, work, ref = os.environ["BERTH"], os.environ["WORK"], os.environ["REF"]
runs, suffix = int(os.environ["MODULE_RUNS"]), os.environ["SUFFIX"]
fifo = os.path.join(work, "marks", "started")
libc = ctypes.CDLL(None, use_errno=True)
own_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
crun_ns = os.open("/proc/%s/ns/mnt" % os.environ["NS_PID"], os.O_RDONLY)


def routes():
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                         stdout=subprocess.PIPE, check=True).stdout
    return [ipaddress.ip_network(r["dst"]) for r in json.loads(out)
            if re.match(r"^[0-9.]+(/[0-9]+)?$", r.get("dst", ""))]


taken, subnets = routes(), []
while len(subnets) < 2:
    n = ipaddress.ip_network("10.%d.%d.0/24" % (random.randint(100, 250), random.randint(0, 255)))
    if not any(n.overlaps(t) for t in taken + subnets):
        subnets.append(n)
net_a, net_b = "bench-a-" + suffix, "bench-b-" + suffix
cfg = {"device_id": "bench", "iothub_hostname": "bench.example.net",
       "device_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
       "root": os.path.join(work, "root"), "run": os.path.join(work, "drun"),
       "hub": {"enabled": False}, "default_network": "host", "reconcile_interval_ms": 60000,
       "networks": {net_a: {"subnet": str(subnets[0])}, net_b: {"subnet": str(subnets[1])}}}
with open(os.path.join(work, "daemon.json"), "w") as f:
    json.dump(cfg, f)
log = open(os.path.join(work, "daemon.log"), "wb")
daemon = subprocess.Popen([berth, "daemon", "--config", os.path.join(work, "daemon.json")],
                          stdout=log, stderr=log)
with open(os.path.join(work, "daemon.pid"), "w") as f:
    f.write("%d\n" % daemon.pid)


def cli(*args):
    return subprocess.run([berth, "--run", os.path.join(work, "drun")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def daemon_log():
    with open(os.path.join(work, "daemon.log")) as f:
        return f.read()


def wait(pred, what):
    deadline = time.time() + 30
    while not pred():
        if time.time() > deadline or daemon.poll() is not None:
            sys.exit("timed out waiting for %s\n%s" % (what, daemon_log()[-3000:]))
        time.sleep(0.02)


wait(lambda: cli("list").returncode == 0, "the daemon")


def module(network, cmd, restart="never"):
    opts = {"Cmd": cmd, "HostConfig": {"NetworkMode": network,
                                        "Binds": [os.path.join(work, "marks") + ":/m"]}}
    return {"type": "docker", "status": "running", "restartPolicy": restart,
            "imagePullPolicy": "never",
            "settings": {"image": ref, "createOptions": json.dumps(opts)}}


anchor = {"anchor": module(net_a, ["/bin/sleep", "100000"], "always")}


def deploy(mods):
    doc = {"modulesContent": {"$edgeAgent": {"properties.desired": {
        "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
        "systemModules": {}, "modules": mods}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {},
                                            "storeAndForwardConfiguration": {
                                                "timeToLiveSecs": 7200}}}}}
    path = os.path.join(work, "deploy.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    p = cli("deploy", path)
    if p.returncode != 0:
        sys.exit("berth deploy: " + p.stderr.decode())


def listed():
    return {m["name"]: m for m in json.loads(cli("list", "--json").stdout)}


deploy(anchor)
wait(lambda: listed().get("anchor", {}).get("runtimeStatus") == "running", "the anchor")


def module_start(network):
    def run(i):
        name = "m-%d" % i
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            t0 = time.perf_counter()
            deploy(dict(anchor, **{name: module(network, ["/bin/sh", "-c", "echo > /m/started"])}))
            if not select.select([rfd], [], [], 30)[0]:
                sys.exit("module %s on %s did not start\n%s" % (name, network, daemon_log()[-3000:]))
            dt = time.perf_counter() - t0
            os.read(rfd, 16)
        finally:
            os.close(rfd)
        wait(lambda: listed().get(name, {}).get("runtimeStatus") == "stopped", name + " ended")
        deploy(anchor)
        wait(lambda: name not in listed(), name + " removed")
        return dt
    return run


def crun(i):
    if libc.setns(crun_ns, 0x00020000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    try:
        t0 = time.perf_counter()
        p = subprocess.run(["crun", "run", "--bundle", os.path.join(work, "bundle"),
                            "cm-%s-%d" % (suffix, i)], stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
    finally:
        libc.setns(own_ns, 0x00020000)
    if p.returncode:
        sys.exit("crun run failed")
    return dt


cases = [("host network", module_start("host")), ("bridge network", module_start(net_a)),
         ("bridge, first module", module_start(net_b)), ("crun run /bin/true", crun)]
times = {n: [] for n, _ in cases}
k = 0
for name, fn in cases:          # warm-up
    fn(k)
    k += 1
for i in range(runs):
    for name, fn in cases[i % 4:] + cases[:i % 4]:
        times[name].append(fn(k))
        k += 1
deploy({})
wait(lambda: not listed(), "every module removed")
daemon.terminate()
daemon.wait(60)
log.close()
text = daemon_log()
pat = r"network %s, address \S+ on \S+ \(CNI ADD (\d+) ms\)"
add = [int(x) for x in re.findall(pat % re.escape(net_a), text)]
add_first = [int(x) for x in re.findall(pat % re.escape(net_b), text)]
dele = [int(x) for x in re.findall(r"left network \S+ \(CNI DEL (\d+) ms\)", text)]
med = {n: statistics.median(t) * 1000 for n, t in times.items()}
print()
print("module start, berth deploy to the module's program, %d runs each, alternated (ms)" % runs)
print("%-22s %8s %8s %8s %8s" % ("", "median", "p10", "p90", "min"))
for name, _ in cases:
    t = sorted(times[name])
    print("%-22s %8.2f %8.2f %8.2f %8.2f" % (name, med[name], t[len(t) // 10] * 1000,
                                               t[len(t) * 9 // 10] * 1000, t[0] * 1000))
crun_med = med["crun run /bin/true"]
print("bridge network: %.2f x the host network, %.2f x crun run" % (
    med["bridge network"] / med["host network"], med["bridge network"] / crun_med))
print("bridge, first module: %.2f x the host network" % (
    med["bridge, first module"] / med["host network"]))
print("host network: %.2f x crun run" % (med["host network"] / crun_med))
print("CNI ADD (daemon log): median %d ms with a module on the network, %d ms for the first; "
      "CNI DEL median %d ms" % (statistics.median(add), statistics.median(add_first),
                                statistics.median(dele)))
EOF
