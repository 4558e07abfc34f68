"""Managed from the cloud ("deployments": "cloud"), against the IoT Hub
stand-in (tests/iothub/): the deployment is the $edgeAgent and $edgeHub
twins' desired properties, $edgeAgent reports what runs as edgeAgent does,
module twins and direct methods go through IoT Hub."""
import json
import time

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import DEVICE_KEY, manifest, module, unique
from upstreamkit import ModuleClient

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
    time.sleep(1)
    assert {n: d.module(n)["lastStartTimeUtc"] for n in (a, b)} == before
    assert {n: d.module(n)["runtimeStatus"] for n in (a, b)} == {a: "running", b: "running"}
    # Local deployments are refused: the cloud is the only master.
    r = d.deploy(manifest({}), check=False)
    assert r.returncode != 0 and b"from the cloud" in r.stderr, r
    assert d.module(a)["runtimeStatus"] == "running"
