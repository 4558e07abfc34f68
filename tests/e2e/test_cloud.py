"""Managed from the cloud ("deployments": "cloud"), against the IoT Hub
stand-in (tests/iothub/): the deployment is the $edgeAgent and $edgeHub
twins' desired properties, $edgeAgent reports what runs as edgeAgent does,
module twins and direct methods go through IoT Hub."""
import json
import os
import queue
import threading
import time

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import DEVICE_KEY, manifest, module, unique
from fleetkit import Relay
from hubkit import UnixClient

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
DEVICE = "Hannover01"
UP = {"up": "FROM /messages/* INTO $upstream"}


def cloud_daemon(daemons, iothub, **options):
    iothub.create_device(DEVICE, edge=True, primary_key=DEVICE_KEY, secondary_key=DEVICE_KEY)
    return daemons(None, hub=True, iothub_hostname=iothub.hostname,
                   upstream={"url": iothub.mqtts_url, "ca_file": iothub.ca_file,
                             "rest_url": iothub.rest_url}, **options)


def reported(iothub, module="$edgeAgent"):
    return iothub.get_twin(DEVICE, module)["properties"]["reported"]


def desired_version(iothub, module="$edgeAgent"):
    return iothub.get_twin(DEVICE, module)["properties"]["desired"]["$version"]


def wait_reported(iothub, ok, what, module="$edgeAgent", timeout=30):
    last = {}

    def check():
        last["r"] = reported(iothub, module)
        return ok(last["r"])
    try:
        wait_for(check, timeout, interval=0.2, what=what)
    except TimeoutError:
        raise AssertionError("%s; reported: %s" % (what, json.dumps(last.get("r"), indent=1)))
    return last["r"]


def status_is(code, version):
    return lambda r: r.get("lastDesiredStatus", {}).get("code") == code and \
        r.get("lastDesiredVersion") == version


def test_deployments_from_the_cloud_apply_whole_and_are_reported_as_edge_agent_does(
        daemons, image, iothub):
    a, b = unique("a"), unique("b")
    d = cloud_daemon(daemons, iothub).start()
    # Version 1: one module, started; reported as edgeAgent reports it.
    iothub.apply_configuration(DEVICE, manifest({a: module(image, SLEEP)}, routes=UP))
    d.wait_status(a, timeout=60)
    v1 = desired_version(iothub)
    rep = wait_reported(iothub, lambda r: status_is(200, v1)(r) and r.get("modules", {}).get(
        a, {}).get("runtimeStatus") == "running", "version 1 reported running")
    listed = d.module(a)
    got = rep["modules"][a]
    for key in ("runtimeStatus", "exitCode", "restartCount", "lastStartTimeUtc"):
        assert got[key] == listed[key], (key, got, listed)
    assert got["settings"]["imageHash"] == listed["imageDigest"]
    assert got["settings"]["image"] == image
    assert rep["runtime"]["platform"]["os"] == "linux"
    assert rep["runtime"]["platform"]["architecture"]
    assert rep["schemaVersion"] and rep["version"]["version"]
    hub_rep = wait_reported(iothub, lambda r: r.get("lastDesiredStatus", {}).get("code") == 200,
                            "$edgeHub's status", module="$edgeHub")
    assert hub_rep["lastDesiredVersion"] == desired_version(iothub, "$edgeHub")
    # Version 2: b added, a changed (its environment: a new instance).
    started_a = listed["lastStartTimeUtc"]
    iothub.apply_configuration(DEVICE, manifest(
        {a: module(image, SLEEP, env={"V": "2"}), b: module(image, SLEEP)}, routes=UP))
    d.wait_status(b, timeout=60)
    wait_for(lambda: d.module(a)["lastStartTimeUtc"] != started_a and
             d.module(a)["runtimeStatus"] == "running", 30, what="a started again")
    v2 = desired_version(iothub)
    wait_reported(iothub, lambda r: status_is(200, v2)(r) and set(r["modules"]) == {a, b} and
                  all(m["runtimeStatus"] == "running" for m in r["modules"].values()),
                  "version 2 reported")
    # An invalid version 3 (a module without an image) is refused whole:
    # reported 400 with the validation error, nothing changes.
    before = {n: d.module(n)["lastStartTimeUtc"] for n in (a, b)}
    broken = module(image, SLEEP)
    del broken["settings"]["image"]
    iothub.apply_configuration(DEVICE, manifest({a: broken}, routes=UP))
    v3 = desired_version(iothub)
    rep = wait_reported(iothub, status_is(400, v3), "version 3 refused")
    assert "settings.image" in rep["lastDesiredStatus"]["description"], rep
    out = d.berth("check", "--config", d.config_path, check=False).stdout.decode()
    assert "deployments come from the cloud" in out, out
    assert "deployment from the cloud: version %d: 400" % v3 in out, out
    time.sleep(1)
    assert {n: d.module(n)["lastStartTimeUtc"] for n in (a, b)} == before
    assert {n: d.module(n)["runtimeStatus"] for n in (a, b)} == {a: "running", b: "running"}
    # A schemaVersion berth does not know: 412; empty desired properties: 417.
    agent_only = manifest({a: module(image, SLEEP)}, routes=UP)["modulesContent"]
    agent_only["$edgeAgent"]["properties.desired"]["schemaVersion"] = "2.0"
    iothub.apply_configuration(DEVICE, agent_only)
    wait_reported(iothub, status_is(412, desired_version(iothub)), "schema 2.0 refused")
    agent_only["$edgeAgent"]["properties.desired"] = {}
    iothub.apply_configuration(DEVICE, agent_only)
    wait_reported(iothub, status_is(417, desired_version(iothub)), "empty refused")
    assert {n: d.module(n)["runtimeStatus"] for n in (a, b)} == {a: "running", b: "running"}
    # Local deployments are refused: the cloud is the only master.
    r = d.deploy(manifest({}), check=False)
    assert r.returncode != 0 and b"from the cloud" in r.stderr, r
    assert d.module(a)["runtimeStatus"] == "running"


class LocalModule:
    """A module's MQTT connection to the device's hub (from the host, with
    the token `berth token` gives), with every message it gets in a queue."""

    def __init__(self, d, name):
        self.name = name
        self.messages = queue.Queue()
        token = d.berth("token", name).stdout.decode().strip()
        self.c = UnixClient(os.path.join(d.berth.run_dir, "hub.sock"), "%s/%s" % (DEVICE, name))
        self.c.username_pw_set("%s/%s/%s/?api-version=2018-06-30" % (
            d.iothub_hostname, DEVICE, name), token)
        acks = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc: acks.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.connect("localhost", 1883, 60)
        self.c.loop_start()
        assert acks.get(timeout=10) == 0
        for t in ("$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#",
                  "$iothub/methods/POST/#"):
            self.c.subscribe(t, 1)
        time.sleep(0.3)
        self.rid = 0

    def expect(self, prefix, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                topic, payload = self.messages.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if topic.startswith(prefix):
                return topic, payload
        raise AssertionError("module %s: nothing on %s" % (self.name, prefix))

    def request(self, topic, body=b""):
        self.rid += 1
        self.c.publish("%s?$rid=%d" % (topic, self.rid), body, 1)
        return self.expect("$iothub/twin/res/")

    def report(self, patch):
        topic, _ = self.request("$iothub/twin/PATCH/properties/reported/", json.dumps(patch))
        assert topic.startswith("$iothub/twin/res/204/"), topic

    def twin(self):
        topic, body = self.request("$iothub/twin/GET/")
        assert topic.startswith("$iothub/twin/res/200/"), topic
        return json.loads(body)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def deploy_and_wait(d, iothub, modules, routes=UP, twins=None):
    iothub.apply_configuration(DEVICE, manifest(modules, routes=routes, twins=twins))
    for name in modules:
        d.wait_status(name, timeout=60)
    v = desired_version(iothub)
    wait_reported(iothub, status_is(200, v), "version %d applied" % v)


def test_module_twins_and_direct_methods_go_through_iothub(daemons, image, iothub):
    m = unique("m")
    d = cloud_daemon(daemons, iothub).start()
    d.iothub_hostname = iothub.hostname
    deploy_and_wait(d, iothub, {m: module(image, SLEEP)}, twins={m: {"interval": 5}})
    mod = LocalModule(d, m)
    # The module's desired properties from the deployment are its twin in IoT Hub.
    wait_for(lambda: mod.twin()["desired"].get("interval") == 5, 20,
             what="the deployment's desired properties in the module's twin")
    # A reported patch of the module reaches the cloud's twin.
    mod.report({"temperature": 21, "unit": {"name": "C"}})
    wait_reported(iothub, lambda r: r.get("temperature") == 21 and r.get("unit") == {"name": "C"},
                  "the module's reported patch in the cloud", module=m)
    # A desired patch made in the cloud reaches the module, and its GET
    # (answered from the twin cache) has it.
    iothub.patch_twin(DEVICE, m, desired={"threshold": 30})
    topic, body = mod.expect("$iothub/twin/PATCH/properties/desired/")
    patch = json.loads(body)
    assert patch["threshold"] == 30 and "$version=%d" % patch["$version"] in topic
    twin = mod.twin()
    assert twin["desired"]["threshold"] == 30 and twin["reported"]["temperature"] == 21
    # A $version gap (a change IoT Hub did not push) makes the hub read the
    # whole twin: the module gets both changes.
    iothub.patch_twin_silently(DEVICE, m, desired={"missed": 1})
    iothub.patch_twin(DEVICE, m, desired={"next": 2})
    deadline = time.time() + 20
    seen = {}
    while not ("missed" in seen and "next" in seen) and time.time() < deadline:
        _, body = mod.expect("$iothub/twin/PATCH/properties/desired/", deadline - time.time())
        seen.update(json.loads(body))
    assert seen.get("missed") == 1 and seen.get("next") == 2, seen
    assert "upstream %s: desired version" % m in d.log_text()
    assert mod.twin()["desired"]["$version"] == desired_version(iothub, m)
    # The routes are $edgeHub's desired properties: the module's message goes up.
    mod.c.publish("devices/%s/modules/%s/messages/events/%%24.on=out" % (DEVICE, m), b"hi", 1)
    assert [t["body"] for t in iothub.wait_telemetry(1, DEVICE, m, timeout=20)] == [b"hi"]
    # A direct method from the cloud reaches the module; its answer and
    # status go back.
    result = {}

    def invoke():
        result["r"] = iothub.invoke_method(DEVICE, m, "setThreshold", {"to": 25},
                                           response_timeout=10)
    t = threading.Thread(target=invoke)
    t.start()
    topic, body = mod.expect("$iothub/methods/POST/setThreshold/")
    assert json.loads(body) == {"to": 25}
    rid = topic.split("$rid=")[1]
    mod.c.publish("$iothub/methods/res/201/?$rid=%s" % rid, json.dumps({"now": 25}), 1)
    t.join(20)
    assert result["r"] == (200, {"status": 201, "payload": {"now": 25}}), result
    # A module that does not answer: 504 at the timeout.
    start = time.time()
    status, _ = iothub.invoke_method(DEVICE, m, "silent", {}, response_timeout=5)
    assert status == 504 and 4.5 < time.time() - start < 15
    # A module that is not connected: 404 at once.
    mod.close()
    start = time.time()
    status, body = iothub.invoke_method(DEVICE, m, "setThreshold", {}, response_timeout=10)
    assert (status, body["status"]) == (200, 404), (status, body)
    assert time.time() - start < 6  # well before its 10 s timeout
    # The hub's client list is $edgeHub's reported "clients".
    wait_reported(iothub, lambda r: r.get("clients", {}).get("%s/%s" % (DEVICE, m), {}).get(
        "status") == "Disconnected", "the module's client disconnected", module="$edgeHub")


def test_offline_reported_patches_arrive_once_merged_and_cloud_changes_apply_on_reconnect(
        daemons, image, iothub):
    m, n = unique("m"), unique("n")
    iothub.create_device(DEVICE, edge=True, primary_key=DEVICE_KEY, secondary_key=DEVICE_KEY)
    link = Relay("127.0.0.1", 0, "127.0.0.1", iothub.mqtts_port)
    try:
        d = daemons(None, hub=True, iothub_hostname=iothub.hostname,
                    upstream={"url": "mqtts://127.0.0.1:%d" % link.port,
                              "ca_file": iothub.ca_file, "rest_url": iothub.rest_url}).start()
        d.iothub_hostname = iothub.hostname
        deploy_and_wait(d, iothub, {m: module(image, SLEEP)})
        mod = LocalModule(d, m)
        mod.report({"n": 0})
        wait_reported(iothub, lambda r: r.get("n") == 0, "the first report", module=m)
        version = reported(iothub, m)["$version"]
        link.cut()
        # Offline: the module reports twice (answered by the local twin) ...
        mod.report({"n": 1, "gone": "soon"})
        mod.report({"n": 2, "gone": None, "extra": {"k": "x"}})
        assert mod.twin()["reported"]["n"] == 2
        # ... the operator deploys a second module meanwhile ...
        iothub.apply_configuration(DEVICE, manifest({m: module(image, SLEEP),
                                                     n: module(image, SLEEP)}, routes=UP))
        v2 = desired_version(iothub)
        mod.close()
        # ... and the device restarts while offline: the last applied
        # deployment stays in force.
        d.terminate()
        d.start()
        d.wait_status(m, timeout=30)
        assert d.module(n) is None
        time.sleep(1)
        assert reported(iothub, m)["$version"] == version
        link.mend()
        # Back online: the new deployment is applied, the reported patches
        # arrive as one, merged.
        d.wait_status(n, timeout=90)
        wait_reported(iothub, status_is(200, v2), "version 2 applied after the reconnect",
                      timeout=30)
        rep = wait_reported(iothub, lambda r: r.get("n") == 2, "the merged report", module=m)
        assert rep.get("extra") == {"k": "x"} and "gone" not in rep, rep
        assert rep["$version"] == version + 1, (rep["$version"], version)
    finally:
        link.close()
