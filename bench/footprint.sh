#!/bin/sh
# Resident memory of berth's own processes with 5 idle modules.
#
# Starts a private docker-registry on a free loopback port, pushes a busybox
# image built by tests/e2e/images.py, starts `berth daemon` with a deployment
# of 5 modules running `sleep`, waits until all run, then watches the daemon,
# the hub and each shim for FOOTPRINT_SECONDS (default 30): once a second it
# calls `berth list` (as a monitoring script would) and reads RSS and PSS
# from /proc/PID/smaps_rollup. It reports each process's peak RSS and PSS
# over that time, the total, the targets (RSS, what `ps` shows: daemon <= 2
# MB, daemon + hub + 5 shims <= 12 MB) and Azure IoT Edge's runtime modules
# (edgeAgent + edgeHub, about 230 MB) for comparison, then the daemon's, the
# hub's and one shim's RSS and PSS per mapping at their peaks (and the daemon's
# peak RSS while it pulled and started the modules). The modules' own
# processes (busybox sleep) are not counted: they are the workload.
#
# Usage: bench/footprint.sh [BERTH_BINARY]     (as root)
set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${1:-$TOP/build/berth}
PY=/usr/bin/python3
[ -x "$BERTH" ] || { echo "footprint: build berth first (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "footprint: run as root" >&2; exit 1; }

WORK=$(mktemp -d /tmp/berth-footprint.XXXXXX)
ROOT=$WORK/root
RUN=$WORK/run
SUFFIX=$(basename "$WORK" | sed 's/.*\.//' | tr 'A-Z' 'a-z')
DAEMON_PID=
REG_PID=

cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		printf '{"modulesContent":{"$edgeAgent":{"properties.desired":{"modules":{}}}}}' \
			>"$WORK/empty.json"
		"$BERTH" --root "$ROOT" --run "$RUN" deploy "$WORK/empty.json" >/dev/null 2>&1 || true
		i=0
		while [ $i -lt 100 ] && "$BERTH" --root "$ROOT" --run "$RUN" list --json 2>/dev/null |
			grep -q '"name"'; do
			sleep 0.2
			i=$((i + 1))
		done
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	grep -o " $WORK[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
mkdir -p "$WORK/registry" "$ROOT" "$RUN"
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
i=0
until $PY -c "import urllib.request; urllib.request.urlopen('http://$REG/v2/', timeout=1)" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "footprint: registry did not start" >&2; exit 1; }
	sleep 0.1
done

$PY - "$TOP/tests/e2e" "$WORK" "$REG" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import images
images.push_image(sys.argv[2], sys.argv[3], "busybox", "1", [images.Layer(images.busybox_layer())])
PY

KEY=$($PY -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
cat >"$WORK/config.json" <<JSON
{"device_id": "footprint", "iothub_hostname": "bench.example.net", "device_key": "$KEY",
 "root": "$ROOT", "run": "$RUN", "deployment_file": "$WORK/deployment.json",
 "registries": {"$REG": {"insecure": true}}, "stop_grace_secs": 1, "default_network": "host"}
JSON
$PY - "$WORK/deployment.json" "$REG/busybox:1" "$SUFFIX" <<'PY'
import json, sys
path, image, suffix = sys.argv[1:]
opts = json.dumps({"Cmd": ["/bin/sleep", "100000"], "StopTimeout": 1})
mods = {"idle%d-%s" % (i, suffix): {"type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": image, "createOptions": opts}} for i in range(1, 6)}
json.dump({"modulesContent": {"$edgeAgent": {"properties.desired": {"modules": mods}},
                              "$edgeHub": {"properties.desired": {"routes": {
                                  "all": "FROM /messages/* INTO $upstream"}}}}}, open(path, "w"))
PY

"$BERTH" daemon --config "$WORK/config.json" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
i=0
START_PEAK=0 # the daemon's RSS (kB) while it pulls and starts the modules
while :; do
	rss=$(awk '/^Rss:/ {print $2}' "/proc/$DAEMON_PID/smaps_rollup" 2>/dev/null || echo 0)
	[ "${rss:-0}" -gt "$START_PEAK" ] && START_PEAK=$rss
	n=$("$BERTH" --run "$RUN" list --json 2>/dev/null | grep -c '"runtimeStatus": "running"' || true)
	[ "$n" = 5 ] && break
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		echo "footprint: modules did not start; daemon log:" >&2
		cat "$WORK/daemon.log" >&2
		exit 1
	fi
	sleep 0.2
done
sleep 3 # let start-up work settle (token files, first reconcile passes)

$PY - "$BERTH" "$RUN" "$DAEMON_PID" "${FOOTPRINT_SECONDS:-30}" "$START_PEAK" <<'PY'
import collections, json, subprocess, sys, time
berth, run, daemon, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
start_peak = int(sys.argv[5])

def list_modules():
    out = subprocess.run([berth, "--run", run, "list", "--json"], check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out)

def hub_pid():
    with open("/proc/%d/task/%d/children" % (daemon, daemon)) as f:
        for pid in f.read().split():
            with open("/proc/%s/cmdline" % pid, "rb") as c:
                if b"\0hub\0" in c.read():
                    return int(pid)
    return None

def rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in ("Rss", "Pss"):
                out[k] = int(v.split()[0])
    return out["Rss"], out["Pss"]

def per_mapping(pid):
    """RSS and PSS (kB) per mapped file or kind of anonymous memory."""
    rows = collections.OrderedDict()
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anonymous]"
                cur = rows.setdefault(name.rsplit("/", 1)[-1], [0, 0])
            elif parts[0] == "Rss:":
                cur[0] += int(parts[1])
            elif parts[0] == "Pss:":
                cur[1] += int(parts[1])
    return [(k, v[0], v[1]) for k, v in rows.items() if v[0]]

peak = {}       # name -> [pid, rss, pss]
detail = {}     # name -> per-mapping rows at that process's RSS peak
samples = 0
end = time.monotonic() + seconds
while True:
    mods = list_modules()
    rows = [("daemon", daemon)]
    hub = hub_pid()
    if hub:
        rows.append(("hub", hub))
    rows += [("shim " + m["name"], m["shimPid"]) for m in mods if m.get("shimPid")]
    for name, pid in rows:
        rss, pss = rollup(pid)
        p = peak.setdefault(name, [pid, 0, 0])
        if rss > p[1]:
            p[1] = rss
            if name in ("daemon", "hub") or (name.startswith("shim ") and
                                            not any(k.startswith("shim ") for k in detail)) \
                    or name in detail:
                detail[name] = per_mapping(pid)
        p[2] = max(p[2], pss)
    samples += 1
    if time.monotonic() >= end:
        break
    time.sleep(1)

print("peak over %d samples in %.0f s, each right after a `berth list`" % (samples, seconds))
print("%-28s %8s %10s %10s" % ("process", "pid", "RSS (kB)", "PSS (kB)"))
total_rss = total_pss = 0
for name, (pid, rss, pss) in peak.items():
    total_rss += rss
    total_pss += pss
    print("%-28s %8d %10d %10d" % (name, pid, rss, pss))
print("%-28s %8s %10d %10d" % ("total (%d processes)" % len(peak), "", total_rss, total_pss))
d_rss, d_pss = peak["daemon"][1], peak["daemon"][2]
print()
print("daemon RSS %.2f MB (target <= 2 MB): %s; PSS %.2f MB" % (
    d_rss / 1024, "ok" if d_rss <= 2048 else "OVER", d_pss / 1024))
print("daemon+hub+5 shims RSS %.2f MB (target <= 12 MB): %s; PSS %.2f MB" % (
    total_rss / 1024, "ok" if total_rss <= 12288 else "OVER", total_pss / 1024))
print("daemon RSS while it pulled and started the modules: at most %.2f MB" % (start_peak / 1024))
print("Azure IoT Edge's runtime modules (edgeAgent + edgeHub): about 230 MB resident")
for name, rows in detail.items():
    print()
    print("%s at its RSS peak, per mapping" % name)
    print("  %-34s %10s %10s" % ("mapping", "RSS (kB)", "PSS (kB)"))
    for k, rss, pss in rows:
        print("  %-34s %10d %10d" % (k[:34], rss, pss))
PY
