#!/bin/sh
# berth's main job, end to end, on this machine (make demo):
#   1. a local OCI registry, and two module images built from the C modules
#      in examples/modules (a sensor and a filter);
#   2. berth pulls an image and runs one instance of it;
#   3. berth daemon takes its deployment from the cloud (the $edgeAgent and
#      $edgeHub twins in IoT Hub, as IoT Edge does), starts the hub, and the sensor's readings flow through a route with a
#      WHERE on the JSON body to the filter, whose alerts are routed $upstream;
#   4. a direct method changes the filter's threshold; twins report back;
#   5. the cloud: a local stand-in for Azure IoT Hub (tests/iothub) receives
#      the alerts; it goes away, alerts wait in the hub's durable store, and
#      drain when it returns; a new deployment set in the cloud adds a module
#      and the device follows, reporting back through its $edgeAgent twin.
# Everything lives in a temporary directory and is removed at the end.
# DEMO_SECONDS=N keeps the device running for N seconds in all; the demo exits
# 0 only if alerts reached the cloud.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BERTH=$top/build/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$work/root
run=$work/run
registry_pid=
daemon_pid=
cloud_pid=
started=$(date +%s)

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
b() { "$BERTH" --root "$root" --run "$run" "$@"; }

cleanup() {
	set +e
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
	fi
	[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
	[ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null && wait "$cloud_pid" 2>/dev/null
	grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (berth creates namespaces, cgroups and mounts)" >&2
	exit 1
fi

say "A local registry"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
mkdir -p "$work/registry"
cat > "$work/registry/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry/data}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
	/usr/bin/python3 -c "import urllib.request as u; u.urlopen('http://$reg/v2/')" 2>/dev/null && break
	sleep 0.1
done
echo "docker-registry on $reg"

say "Module images: sensor and filter (static C programs speaking MQTT to the hub)"
mkdir -p "$work/img"
for m in sensor filter; do
	umoci init --layout "$work/img/$m" >/dev/null
	umoci new --image "$work/img/$m:1" >/dev/null
	umoci unpack --image "$work/img/$m:1" "$work/img/$m-bundle" >/dev/null
	mkdir -p "$work/img/$m-bundle/rootfs/bin" "$work/img/$m-bundle/rootfs/etc"
	cp "$top/build/examples/$m" "$work/img/$m-bundle/rootfs/bin/$m"
	cp /bin/busybox "$work/img/$m-bundle/rootfs/bin/busybox"
	for a in sh cat echo grep; do ln -sf busybox "$work/img/$m-bundle/rootfs/bin/$a"; done
	echo "root:x:0:0:root:/:/bin/sh" > "$work/img/$m-bundle/rootfs/etc/passwd"
	umoci repack --image "$work/img/$m:1" "$work/img/$m-bundle" >/dev/null
	umoci config --image "$work/img/$m:1" --config.entrypoint "/bin/$m" \
		--config.env PATH=/bin >/dev/null
	skopeo copy --quiet --dest-tls-verify=false "oci:$work/img/$m:1" "docker://$reg/demo/$m:1"
	echo "pushed $reg/demo/$m:1"
done

say "berth pull: one pass per layer, verified against its digests"
b pull --insecure "$reg/demo/sensor:1"
b images

say "berth run: one instance in its own namespaces, cgroup and seccomp filter"
b run --rm --network none --memory 16000000 --entrypoint /bin/sh "$reg/demo/sensor:1" -c \
	'echo "hello from $(cat /etc/hostname), pid $$ in its own namespace"; grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status'

say "A cloud: a local stand-in for Azure IoT Hub (MQTT over TLS and the REST API)"
mkdir -p "$work/cloud"
# Started again after an outage on the same ports, with the same CA, identities
# and received messages.
cloud_start() {
	node "$top/tests/iothub/server.js" --hostname demo-hub.azure-devices.net \
		--certs "$work/cloud/certs" --state "$work/cloud/state.json" \
		--telemetry-log "$work/cloud/telemetry.jsonl" --mqtt-port -1 \
		--mqtts-port "${1:-0}" --https-port "${2:-0}" --info "$work/cloud/info.json" \
		--quiet >/dev/null 2>>"$work/cloud/log" &
	cloud_pid=$!
	for _ in $(seq 100); do
		[ -s "$work/cloud/info.json" ] && break
		sleep 0.1
	done
	[ -s "$work/cloud/info.json" ] || { echo "demo: the IoT Hub stand-in did not start:" >&2; cat "$work/cloud/log" >&2; exit 1; }
}
cloud_stop() {
	kill -TERM "$cloud_pid"
	wait "$cloud_pid" 2>/dev/null || true
	cloud_pid=
	rm -f "$work/cloud/info.json"
}
cloud() { /usr/bin/python3 "$top/examples/cloud.py" "$work/cloud/info.json" "$@"; }
info() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/cloud/info.json" "$1"; }
cloud_start
mqtts_port=$(info mqttsPort)
https_port=$(info httpsPort)
key=$(head -c 32 /dev/urandom | base64)
cloud device demo-device "$key"
echo "IoT Hub demo-hub.azure-devices.net on 127.0.0.1: MQTT/TLS $mqtts_port, HTTPS $https_port; device demo-device registered"

say "berth daemon: its deployment comes from the cloud (az iot edge set-modules)"
cat > "$work/config.json" <<JSON
{ "device_id": "demo-device", "iothub_hostname": "demo-hub.azure-devices.net",
  "device_key": "$key", "root": "$root", "run": "$run",
  "upstream": { "url": "mqtts://127.0.0.1:$mqtts_port", "ca_file": "$work/cloud/certs/ca.pem",
                "rest_url": "https://127.0.0.1:$https_port" },
  "registries": { "$reg": { "insecure": true } },
  "restart_backoff_unit_ms": 1000 }
JSON
cat > "$work/deployment.json" <<JSON
{ "modulesContent": {
    "\$edgeAgent": { "properties.desired": {
      "schemaVersion": "1.1",
      "runtime": { "type": "docker", "settings": {} },
      "systemModules": {},
      "modules": {
        "sensor": { "type": "docker", "status": "running", "restartPolicy": "always",
                    "startupOrder": 1,
                    "settings": { "image": "$reg/demo/sensor:1",
                                  "createOptions": "{\"HostConfig\":{\"Memory\":16777216,\"NetworkMode\":\"none\"}}" } },
        "filter": { "type": "docker", "status": "running", "restartPolicy": "always",
                    "startupOrder": 0,
                    "settings": { "image": "$reg/demo/filter:1",
                                  "createOptions": "{\"HostConfig\":{\"Memory\":16777216,\"NetworkMode\":\"none\"}}" } } } } },
    "\$edgeHub": { "properties.desired": {
      "schemaVersion": "1.1",
      "routes": {
        "hotReadings": "FROM /messages/modules/sensor/outputs/temperature WHERE \$body.machine.temperature > 25 INTO BrokeredEndpoint(\"/modules/filter/inputs/readings\")",
        "alertsUp": { "route": "FROM /messages/modules/filter/outputs/alerts INTO \$upstream", "priority": 0, "timeToLiveSecs": 86400 } },
      "storeAndForwardConfiguration": { "timeToLiveSecs": 7200 } } },
    "sensor": { "properties.desired": { "interval_ms": 300 } },
    "filter": { "properties.desired": { "threshold": 28 } } } }
JSON
cloud deploy demo-device "$work/deployment.json"
echo "deployment set in IoT Hub: modules sensor and filter"
echo "routes: sensor -> filter when \$body.machine.temperature > 25; filter alerts -> \$upstream"
"$BERTH" daemon --config "$work/config.json" 2>"$work/daemon.log" &
daemon_pid=$!
up=0
for _ in $(seq 150); do
	if b list 2>/dev/null | grep -q "^filter *running" && b list 2>/dev/null | grep -q "^sensor *running"; then
		up=1
		break
	fi
	sleep 0.2
done
b list
if [ "$up" != 1 ]; then
	echo "demo: modules did not start; daemon log:" >&2
	tail -20 "$work/daemon.log" >&2
	exit 1
fi

say "Messages flow: the filter's log (readings routed to it, alerts it sends upstream)"
sleep 6
b logs --tail 6 filter

say "The cloud: alerts routed \$upstream arrive under the filter's identity"
for _ in $(seq 100); do
	[ "$(cloud count demo-device)" -gt 0 ] && break
	sleep 0.1
done
cloud last demo-device 3
echo "IoT Hub has received $(cloud count demo-device) alerts"

say "Offline: the cloud goes away; alerts wait in the hub's durable store"
before=$(cloud count demo-device)
cloud_stop
for _ in $(seq 150); do
	waiting=$(b queues 2>/dev/null | awk '$1 == "$upstream" { print $2 }')
	[ "${waiting:-0}" -ge 8 ] && break
	sleep 0.2
done
b queues | grep -E '^(ENDPOINT|\$upstream )'
b list | grep '^upstream'

say "Back online: the backlog drains, oldest first"
cloud_start "$mqtts_port" "$https_port"
for _ in $(seq 150); do
	b queues 2>/dev/null | grep -q '^\$upstream  *0 ' && break
	sleep 0.2
done
b queues | grep -E '^(ENDPOINT|\$upstream )'
echo "IoT Hub had $before alerts before the outage and has $(cloud count demo-device) now"

say "A direct method: berth invoke filter setThreshold {\"threshold\": 31}"
b invoke filter setThreshold '{"threshold": 31}'
sleep 3
b logs --tail 2 filter

say "Twins: desired from the deployment, reported by the module"
b twin filter

say "The cloud changes the deployment: a second sensor; the device follows"
/usr/bin/python3 - "$work/deployment.json" "$work/deployment2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
mc = d["modulesContent"]
mods = mc["$edgeAgent"]["properties.desired"]["modules"]
mods["sensor2"] = dict(mods["sensor"])
mc["$edgeHub"]["properties.desired"]["routes"]["hotReadings2"] = mc["$edgeHub"]["properties.desired"]["routes"]["hotReadings"].replace("/modules/sensor/", "/modules/sensor2/")
mc["sensor2"] = {"properties.desired": {"interval_ms": 500}}
json.dump(d, open(sys.argv[2], "w"))
PY
cloud deploy demo-device "$work/deployment2.json"
for _ in $(seq 150); do
	b list 2>/dev/null | grep -q "^sensor2 *running" && break
	sleep 0.2
done
b list
sleep 2
echo "\$edgeAgent's reported properties in IoT Hub:"
cloud reported demo-device

if [ -n "${DEMO_SECONDS:-}" ]; then
	left=$((started + DEMO_SECONDS - $(date +%s)))
	if [ "$left" -gt 0 ]; then
		say "Running for ${DEMO_SECONDS}s in all ($left s more)"
		sleep "$left"
	fi
fi
alerts=$(cloud count demo-device)

say "Stop: SIGTERM to the daemon stops the modules in reverse startup order"
kill -TERM "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
tail -4 "$work/daemon.log"
echo
if [ "$alerts" -eq 0 ]; then
	echo "demo: no alert reached the cloud" >&2
	exit 1
fi
echo "demo: done, $alerts alerts reached the cloud (everything it made is removed)"
