"""Module identities in IoT Hub, kept by the daemon (identities "iothub"),
against the IoT Hub stand-in (tests/iothub/: its REST API checks the
device's SAS token, answers 409 to a PUT of an existing identity without
If-Match, and its MQTT endpoint checks each module's token against the keys
it holds). Identities appear, change and go with deployments; while IoT Hub
cannot be reached, modules run and their messages wait."""
import json

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import DEVICE_KEY, manifest, module, unique
from helpers import module_key
from upstreamkit import ModuleClient

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
DEVICE = "Hannover01"


def derived(name, generation, secondary=False):
    return module_key(name, generation + ("\nsecondary" if secondary else ""))


def identities(iothub):
    return {m["moduleId"]: m for m in iothub.list_modules(DEVICE)}


def holds_keys(iothub, name, generation):
    m = identities(iothub).get(name)
    if not m:
        return False
    sym = m["authentication"]["symmetricKey"]
    return m["authentication"]["type"] == "sas" and sym["primaryKey"] == derived(
        name, generation) and sym["secondaryKey"] == derived(name, generation, True)


def edge_daemon(daemons, iothub, dep):
    iothub.create_device(DEVICE, edge=True, primary_key=DEVICE_KEY, secondary_key=DEVICE_KEY)
    return daemons(dep, hub=True, iothub_hostname=iothub.hostname,
                   upstream={"url": iothub.mqtts_url, "ca_file": iothub.ca_file,
                             "rest_url": iothub.rest_url},
                   deployments="local")


def generation(d, name):
    return d.module(name)["generationId"]


def test_identities_appear_change_and_go_with_deployments(daemons, image, iothub):
    a, b = unique("a"), unique("b")
    routes = {"up": "FROM /messages/* INTO $upstream"}
    d = edge_daemon(daemons, iothub, manifest({a: module(image, SLEEP), b: module(image, SLEEP)},
                                              routes=routes)).start()
    d.wait_status(a)
    d.wait_status(b)
    # Appear: every module, $edgeAgent and $edgeHub, with the keys berth derives.
    for name, gen in ((a, generation(d, a)), (b, generation(d, b)),
                      ("$edgeAgent", "berth-system"), ("$edgeHub", "berth-system")):
        wait_for(lambda: holds_keys(iothub, name, gen), 20, what="identity %s" % name)
    assert identities(iothub)[a]["managedBy"] == "IotEdge"
    # IoT Hub takes the module's messages under its identity, signed with
    # that key: the stand-in checks every token.
    c = ModuleClient(d, a)
    c.send_many("out", 3, lambda i: {"n": str(i)})
    c.close()
    got = iothub.wait_telemetry(3, DEVICE, a, timeout=20)
    assert [m["properties"]["n"] for m in got] == ["0", "1", "2"]
    # Change: someone replaced a's keys in IoT Hub; a restarted daemon checks
    # its identities and puts the keys back (an update with If-Match).
    mod = iothub.get_module(DEVICE, a)
    iothub.call("PUT", "/devices/%s/modules/%s" % (DEVICE, a),
                {"deviceId": DEVICE, "moduleId": a,
                 "authentication": {"type": "sas", "symmetricKey": {
                     "primaryKey": derived("x", "y"), "secondaryKey": derived("x", "z")}}},
                headers={"If-Match": '"%s"' % mod["etag"]})
    assert not holds_keys(iothub, a, generation(d, a))
    d.terminate()
    d.start()
    wait_for(lambda: holds_keys(iothub, a, generation(d, a)), 20, what="a's keys back")
    assert "identity %s updated in IoT Hub" % a in d.log_text()
    # Go, and come back with new keys: b leaves the deployment, then returns
    # with a new generation id.
    gen_b = generation(d, b)
    d.deploy(manifest({a: module(image, SLEEP)}, routes=routes))
    wait_for(lambda: b not in identities(iothub), 20, what="b's identity deleted")
    d.wait_gone(b)
    d.deploy(manifest({a: module(image, SLEEP), b: module(image, SLEEP)}, routes=routes))
    d.wait_status(b)
    assert generation(d, b) != gen_b
    wait_for(lambda: holds_keys(iothub, b, generation(d, b)), 20, what="b with new keys")
    # An empty deployment removes the modules' identities, never the system ones.
    d.deploy(manifest({}))
    wait_for(lambda: set(identities(iothub)) == {"$edgeAgent", "$edgeHub"}, 20,
             what="only the system identities left")
    state = json.load(open("%s/agent/identities.json" % d.berth.root))
    assert set(state["identities"]) == {"$edgeAgent", "$edgeHub"}


def test_modules_run_and_messages_wait_while_iothub_is_unreachable(daemons, image, iothub):
    a = unique("a")
    d = edge_daemon(daemons, iothub, manifest({a: module(image, SLEEP)},
                                              routes={"up": "FROM /messages/* INTO $upstream"}))
    iothub.stop()
    d.start()
    d.wait_status(a)  # local operation does not wait for IoT Hub
    c = ModuleClient(d, a)
    c.send_many("out", 5)
    c.close()
    wait_for(lambda: "identities: trying again in" in d.log_text(), 20, what="a retry")
    out = d.berth("list").stdout.decode()
    assert "module identities in IoT Hub: 0 of 3 ready; last error:" in out, out
    assert "5 messages waiting" in out, out
    iothub.start()
    wait_for(lambda: holds_keys(iothub, a, generation(d, a)), 90, what="a's identity created")
    got = iothub.wait_telemetry(5, DEVICE, a, timeout=60)
    assert len(got) == 5
    out = d.berth("list").stdout.decode()
    assert "module identities in IoT Hub: 3 of 3 ready" in out, out
