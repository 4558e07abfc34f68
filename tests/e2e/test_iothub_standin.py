"""The IoT Hub stand-in (tests/iothub) against IoT Hub's documented behaviour:
SAS tokens, the identity registry over REST, the MQTT device endpoint
(CONNACK codes, one connection per identity, topics, telemetry, twins, direct
methods), the service API, and once the real Azure IoT Node SDK.

Every negative case runs next to its positive control.
"""
import base64
import hashlib
import hmac
import json
import os
import select
import subprocess
import threading
import time
import uuid

import pytest

from iothub import HubClient, IotHubStandin, new_key, sas_token

EA = "$edgeAgent"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = IotHubStandin(tmp_path_factory.mktemp("iothub")).start()
    yield h
    h.stop()


def uid(prefix="dev"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def edge_device(hub):
    d = uid("edge")
    key = new_key()
    hub.create_device(d, edge=True, primary_key=key)
    return d, key


def module_body(d, m, key=None):
    body = {"deviceId": d, "moduleId": m, "authentication": {"type": "sas"}}
    if key:
        body["authentication"]["symmetricKey"] = {"primaryKey": key, "secondaryKey": new_key()}
    return body


def mpath(d, m):
    return "/devices/%s/modules/%s" % (d, m)


# -- identity registry over REST, with the edge device's own token ------------

def test_edge_device_token_creates_reads_and_deletes_its_modules(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    key = new_key()
    r = hub.request("PUT", mpath(d, "filter"), module_body(d, "filter", key), token=tok)
    assert r.status == 200, r.raw
    assert r.json["moduleId"] == "filter" and r.json["deviceId"] == d
    assert r.json["authentication"]["symmetricKey"]["primaryKey"] == key
    assert r.json["generationId"] and r.json["etag"]
    assert r.headers["etag"] == '"%s"' % r.json["etag"]
    g = hub.request("GET", mpath(d, "filter"), token=tok)
    assert g.status == 200 and g.json["authentication"]["symmetricKey"]["primaryKey"] == key
    names = {m["moduleId"] for m in hub.request("GET", "/devices/%s/modules" % d, token=tok).json}
    assert names == {"$edgeAgent", "$edgeHub", "filter"}
    assert hub.request("DELETE", mpath(d, "filter"), token=tok,
                       headers={"If-Match": "*"}).status == 204
    gone = hub.request("GET", mpath(d, "filter"), token=tok)
    assert gone.status == 404 and gone.code == "ModuleNotFound"
    again = hub.request("DELETE", mpath(d, "filter"), token=tok, headers={"If-Match": "*"})
    assert again.status == 404 and again.code == "ModuleNotFound"


def test_keys_are_made_by_the_hub_when_the_body_has_none(hub):
    d, dkey = edge_device(hub)
    r = hub.request("PUT", mpath(d, "m"), module_body(d, "m"), token=hub.device_token(d, dkey))
    assert r.status == 200
    sk = r.json["authentication"]["symmetricKey"]
    assert len(sk["primaryKey"]) == 44 and len(sk["secondaryKey"]) == 44
    assert sk["primaryKey"] != sk["secondaryKey"]


def test_updating_an_existing_module_needs_if_match(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    first = hub.request("PUT", mpath(d, "m"), module_body(d, "m", new_key()), token=tok).json
    k2 = new_key()
    no_if = hub.request("PUT", mpath(d, "m"), module_body(d, "m", k2), token=tok)
    assert no_if.status == 409 and no_if.code == "ModuleAlreadyExistsOnDevice"
    wrong = hub.request("PUT", mpath(d, "m"), module_body(d, "m", k2), token=tok,
                        headers={"If-Match": '"bm90LXRoZS1ldGFn"'})
    assert wrong.status == 412 and wrong.code == "PreconditionFailed"
    assert hub.get_module(d, "m")["authentication"]["symmetricKey"] == \
        first["authentication"]["symmetricKey"]
    ok = hub.request("PUT", mpath(d, "m"), module_body(d, "m", k2), token=tok,
                     headers={"If-Match": '"%s"' % first["etag"]})
    assert ok.status == 200 and ok.json["etag"] != first["etag"]
    assert ok.json["generationId"] == first["generationId"]
    assert hub.module_key(d, "m") == k2
    k3 = new_key()
    star = hub.request("PUT", mpath(d, "m"), module_body(d, "m", k3), token=tok,
                       headers={"If-Match": "*"})
    assert star.status == 200 and hub.module_key(d, "m") == k3


def test_if_match_on_a_module_that_does_not_exist_is_404(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    r = hub.request("PUT", mpath(d, "new"), module_body(d, "new"), token=tok,
                    headers={"If-Match": "*"})
    assert r.status == 404 and r.code == "ModuleNotFound"
    assert hub.request("PUT", mpath(d, "new"), module_body(d, "new"), token=tok).status == 200


def test_delete_needs_if_match_and_a_matching_etag(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    etag = hub.request("PUT", mpath(d, "m"), module_body(d, "m"), token=tok).json["etag"]
    assert hub.request("DELETE", mpath(d, "m"), token=tok).status == 412
    assert hub.request("DELETE", mpath(d, "m"), token=tok,
                       headers={"If-Match": '"x%s"' % etag}).status == 412
    assert hub.request("GET", mpath(d, "m"), token=tok).status == 200
    assert hub.request("DELETE", mpath(d, "m"), token=tok,
                       headers={"If-Match": '"%s"' % etag}).status == 204


def test_edge_devices_have_edgeagent_and_edgehub_which_update_with_if_match(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    for sys in ("$edgeAgent", "$edgeHub"):
        g = hub.request("GET", mpath(d, sys), token=tok)
        assert g.status == 200 and g.json["authentication"]["type"] == "sas"
        key = new_key()
        assert hub.request("PUT", mpath(d, sys), module_body(d, sys, key),
                           token=tok).status == 409
        assert hub.request("PUT", mpath(d, sys), module_body(d, sys, key), token=tok,
                           headers={"If-Match": "*"}).status == 200
        assert hub.module_key(d, sys) == key
    other = hub.request("PUT", mpath(d, "$other"), module_body(d, "$other"), token=tok)
    assert other.status == 400
    plain = uid()
    hub.create_device(plain)
    assert hub.request("GET", mpath(plain, EA)).status == 404


def test_a_device_token_manages_only_its_own_edge_device_modules(hub):
    d, dkey = edge_device(hub)
    other, okey = edge_device(hub)
    body = module_body(d, "m")
    assert hub.request("PUT", mpath(d, "m"), body, token=hub.device_token(d, dkey)).status == 200
    foreign = hub.request("PUT", mpath(d, "m2"), module_body(d, "m2"),
                          token=hub.device_token(other, okey))
    assert foreign.status == 401 and foreign.code == "IotHubUnauthorizedAccess"
    assert hub.request("GET", mpath(d, "m"), token=hub.device_token(other, okey)).status == 401
    # a device that is not IoT Edge capable manages no modules
    leaf, lkey = uid(), new_key()
    hub.create_device(leaf, primary_key=lkey)
    r = hub.request("PUT", mpath(leaf, "m"), module_body(leaf, "m"),
                    token=hub.device_token(leaf, lkey))
    assert r.status == 401
    # a module's own token is no registry credential
    mkey = hub.module_key(d, "m")
    assert hub.request("GET", mpath(d, "m"), token=hub.module_token(d, "m", mkey)).status == 401
    # nor is the device token for the device itself (a service operation)
    assert hub.request("GET", "/devices/" + d, token=hub.device_token(d, dkey)).status == 401
    assert hub.request("GET", "/devices/" + d).status == 200


def test_bad_tokens_are_401(hub):
    d, dkey = edge_device(hub)
    path = mpath(d, EA)
    assert hub.request("GET", path, token=hub.device_token(d, dkey)).status == 200
    expired = sas_token("%s/devices/%s" % (hub.hostname, d), dkey, expiry=1000)
    assert hub.request("GET", path, token=expired).status == 401
    assert hub.request("GET", path, token=hub.device_token(d, new_key())).status == 401
    assert hub.request("GET", path, token="").status == 401
    assert hub.request("GET", path, token="Bearer abc").status == 401
    other_hub = sas_token("other.azure-devices.net/devices/%s" % d, dkey)
    assert hub.request("GET", path, token=other_hub).status == 401
    tampered = hub.device_token(d, dkey).replace("&se=", "&se=1")
    assert hub.request("GET", path, token=tampered).status == 401
    # service policy tokens: the right key, and a policy with registry rights
    assert hub.request("GET", path, token=hub.service_token(key=new_key())).status == 401
    assert hub.request("GET", path, token=hub.service_token(policy="nosuch")).status == 401
    assert hub.request("GET", path, token=hub.service_token()).status == 200


def test_the_token_resource_is_case_insensitive_and_may_be_url_encoded_either_way(hub):
    d, dkey = edge_device(hub)
    path = mpath(d, EA)
    upper = sas_token("%s/devices/%s" % (hub.hostname.upper(), d), dkey)
    assert hub.request("GET", path, token=upper).status == 200
    # lower-case escapes (as .NET and the docs' examples write them) sign as sent
    sr = ("%s/devices/%s" % (hub.hostname, d)).replace("/", "%2f")
    se = int(time.time()) + 600
    sig = base64.b64encode(hmac.new(base64.b64decode(dkey), ("%s\n%d" % (sr, se)).encode(),
                                    hashlib.sha256).digest()).decode()
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%d" % (sr, sig.replace("+", "%2b").replace(
        "/", "%2f").replace("=", "%3d"), se)
    assert hub.request("GET", path, token=tok).status == 200


def test_rest_requests_are_validated(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    assert hub.request("PUT", mpath(d, "a"), module_body(d, "a"), token=tok,
                       api_version=None).status == 400
    assert hub.request("PUT", mpath(d, "a"), "{not json", token=tok).status == 400
    assert hub.request("PUT", mpath(d, "a"), module_body(d, "b"), token=tok).status == 400
    one_key = module_body(d, "a")
    one_key["authentication"]["symmetricKey"] = {"primaryKey": new_key()}
    assert hub.request("PUT", mpath(d, "a"), one_key, token=tok).status == 400
    short = module_body(d, "a")
    short["authentication"]["symmetricKey"] = {"primaryKey": "AAAA", "secondaryKey": "AAAA"}
    assert hub.request("PUT", mpath(d, "a"), short, token=tok).status == 400
    slash = hub.request("PUT", mpath(d, "a/b"), module_body(d, "a/b"), token=tok)
    assert slash.status in (400, 404)
    assert hub.request("GET", mpath(d, "a"), token=tok).status == 404
    assert hub.request("PUT", mpath(d, "a"), module_body(d, "a"), token=tok).status == 200
    assert hub.request("GET", mpath(uid(), "a")).status == 404
    err = hub.request("GET", mpath(d, "zz"), token=tok)
    assert err.json["Message"].startswith("ErrorCode:ModuleNotFound;")


# -- MQTT CONNECT ---------------------------------------------------------------

def connect(hub, d, m=None, key=None, **kw):
    c = HubClient(hub, d, m, key=key, **kw)
    rc = c.connect()
    return c, rc


def connack(hub, d, m, key):
    c, rc = connect(hub, d, m, key=key)
    c.close()
    return rc


def test_module_connections_are_checked_against_the_keys_the_registry_holds(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    k1, k2 = new_key(), new_key()
    hub.request("PUT", mpath(d, "m"), module_body(d, "m", k1), token=tok)
    assert (connack(hub, d, "m", k1), connack(hub, d, "m", k2)) == (0, 5)
    hub.request("PUT", mpath(d, "m"), module_body(d, "m", k2), token=tok, headers={"If-Match": "*"})
    assert (connack(hub, d, "m", k1), connack(hub, d, "m", k2)) == (5, 0)


def test_connack_refuses_bad_tokens_unknown_identities_and_malformed_usernames(hub):
    d, dkey = edge_device(hub)
    ok, rc = connect(hub, d, key=dkey, tls=False)
    assert rc == 0
    ok.close()
    cases = {
        "expired token": dict(token=sas_token("%s/devices/%s" % (hub.hostname, d), dkey,
                                              expiry=int(time.time()) - 3600)),
        "wrong key": dict(key=new_key()),
        "no password": dict(token=""),
        "garbage password": dict(token="SharedAccessSignature sr=x"),
        "another device's token": dict(token=hub.device_token(uid(), dkey)),
        "client id of another identity": dict(key=dkey, client_id=d + "/nosuch"),
        "another hub in the username": dict(key=dkey,
                                            username="other.net/%s/?api-version=2021-04-12" % d),
    }
    for what, kw in cases.items():
        c, rc = connect(hub, d, tls=False, **kw)
        assert rc == 5, what
        c.close()
    c, rc = connect(hub, uid(), key=dkey, tls=False)
    assert rc == 5, "unknown device"
    c.close()
    c, rc = connect(hub, d, "nosuch", key=dkey, tls=False)
    assert rc == 5, "unknown module"
    c.close()
    for bad in ("", "justahost", "%s//?api-version=1" % hub.hostname, "a/b/c/d/?x"):
        c, rc = connect(hub, d, key=dkey, username=bad, tls=False)
        assert rc == 4, bad
        c.close()


def test_any_api_version_and_extra_username_parameters_are_accepted(hub):
    d, dkey = edge_device(hub)
    for user in ("%s/%s/?api-version=2018-06-30" % (hub.hostname, d),
                 "%s/%s/?api-version=2020-09-30&DeviceClientType=iothubclient%%2F1.2" % (
                     hub.hostname, d),
                 "%s/%s" % (hub.hostname, d)):
        c, rc = connect(hub, d, key=dkey, username=user)
        assert rc == 0, user
        c.close()


def test_edgeagent_connects_with_its_own_key(hub):
    d, _ = edge_device(hub)
    c, rc = connect(hub, d, EA, key=hub.module_key(d, EA))
    assert rc == 0
    c.close()
    c, rc = connect(hub, d, "$edgeHub", key=hub.module_key(d, EA))
    assert rc == 5
    c.close()


def test_a_second_connection_of_an_identity_closes_the_first(hub):
    d, dkey = edge_device(hub)
    first, rc = connect(hub, d, key=dkey)
    assert rc == 0
    other, rc = connect(hub, d, "$edgeHub", key=hub.module_key(d, "$edgeHub"))
    assert rc == 0
    assert not first.wait_closed(0.3)
    second, rc = connect(hub, d, key=dkey)
    assert rc == 0
    assert first.wait_closed(5)
    assert not second.wait_closed(0.3) and not other.closed.is_set()
    ids = [c["clientId"] for c in hub.clients()]
    assert ids.count(d) == 1 and d + "/$edgeHub" in ids
    # a refused attempt does not take the connection over
    bad, rc = connect(hub, d, key=new_key())
    assert rc == 5
    assert not second.wait_closed(0.3)
    for c in (first, second, other, bad):
        c.close()


def test_deleting_an_identity_closes_its_connection(hub):
    d, dkey = edge_device(hub)
    hub.request("PUT", mpath(d, "m"), module_body(d, "m"), token=hub.device_token(d, dkey))
    keep, rc = connect(hub, d, "$edgeHub", key=hub.module_key(d, "$edgeHub"))
    c, rc = connect(hub, d, "m", key=hub.module_key(d, "m"))
    assert rc == 0
    hub.delete_module(d, "m")
    assert c.wait_closed(5)
    assert not keep.closed.is_set()
    keep.close()
    c.close()


def test_a_connection_closes_when_its_token_expires(tmp_path):
    h = IotHubStandin(tmp_path / "hub", sas_skew=0).start()
    try:
        d = uid()
        key = new_key()
        h.create_device(d, primary_key=key)
        short, rc = connect(h, d, token=h.device_token(d, key, ttl=5))
        assert rc == 0
        assert not short.wait_closed(1.0)
        assert short.wait_closed(10)
        short.close()
        long, rc = connect(h, d, token=h.device_token(d, key, ttl=3600))
        assert rc == 0 and not long.wait_closed(1.5)
        long.close()
    finally:
        h.stop()


def test_a_restarted_standin_keeps_its_ca_identities_telemetry_and_sessions(tmp_path):
    h = IotHubStandin(tmp_path / "hub").start()
    try:
        d, key = uid(), new_key()
        h.create_device(d, primary_key=key)
        c, rc = connect(h, d, key=key)
        c.subscribe("$iothub/twin/PATCH/properties/desired/#", qos=1)
        c.publish("devices/%s/messages/events/" % d, b"before", qos=1)
        c.close()
        fresh, rc = connect(h, d, "nosuch", key=key)  # refused, so no session of its own
        ports, ca = (h.mqtt_port, h.mqtts_port, h.https_port), open(h.ca_file).read()
        h.restart()
        assert (h.mqtt_port, h.mqtts_port, h.https_port) == ports
        assert open(h.ca_file).read() == ca
        assert [m["body"] for m in h.telemetry(d)] == [b"before"]
        # the persistent session kept its subscription: no SUBSCRIBE after the restart
        flags = {}
        c = HubClient(h, d, key=key)
        c.client.on_connect = lambda cl, u, f, rc: (flags.update(f), c.connack.put(rc))
        assert c.connect() == 0 and flags["session present"] == 1
        h.patch_twin(d, desired={"after": "restart"})
        topic, body = c.get("$iothub/twin/PATCH/properties/desired/")
        assert json.loads(body) == {"after": "restart", "$version": 2}
        c.close()
        # a clean session starts with nothing
        clean = HubClient(h, d, key=key, clean=True)
        assert clean.connect() == 0
        h.patch_twin(d, desired={"again": 1})
        assert clean.get(timeout=0.5) is None
        clean.close()
        fresh.close()
    finally:
        h.stop()


def test_the_command_line_says_how_to_use_it_and_refuses_bad_options(tmp_path):
    server = os.path.join(os.path.dirname(__file__), "..", "iothub", "server.js")
    p = subprocess.run(["node", server, "--help"], stdout=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and b"--mqtts-port" in p.stdout and b"--state" in p.stdout
    p = subprocess.run(["node", server, "--mqtt-port", "x"], stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 2 and b"--mqtt-port needs a number" in p.stderr
    p = subprocess.run(["node", server, "--bogus"], stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 2 and b"unknown option --bogus" in p.stderr
    # fixed ports, --info and --service-key, as a shell script starts it
    info, key = tmp_path / "hub.info", new_key()
    h = IotHubStandin(tmp_path / "probe").start()
    ports = (h.mqtts_port, h.https_port)
    h.stop()
    proc = subprocess.Popen(["node", server, "--certs", str(tmp_path / "certs"),
                             "--mqtt-port", "-1", "--mqtts-port", str(ports[0]),
                             "--https-port", str(ports[1]),
                             "--info", str(info), "--service-key", key, "--quiet"],
                            stdout=subprocess.PIPE)
    try:
        ready = json.loads(proc.stdout.readline())
        assert json.loads(info.read_text()) == ready
        assert (ready["mqttsPort"], ready["httpsPort"]) == ports and "mqttPort" not in ready
        assert ready["serviceKey"] == key and ready["caFile"] == str(tmp_path / "certs" / "ca.pem")
        assert ready["serviceConnectionString"].endswith(";SharedAccessKeyName=iothubowner;"
                                                         "SharedAccessKey=" + key)
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_service_device_calls_create_disable_and_delete_devices(hub):
    d, key = uid(), new_key()
    dev = hub.create_device(d, primary_key=key)
    assert dev["capabilities"] == {"iotEdge": False} and dev["status"] == "enabled"
    assert hub.request("PUT", "/devices/" + d, {"deviceId": d}).status == 409
    c, rc = connect(hub, d, key=key)
    assert rc == 0
    body = dict(dev, status="disabled")
    r = hub.request("PUT", "/devices/" + d, body, headers={"If-Match": '"%s"' % dev["etag"]})
    assert r.status == 200 and r.json["status"] == "disabled"
    assert r.json["authentication"]["symmetricKey"]["primaryKey"] == key
    c2, rc = connect(hub, d, key=key)
    assert rc == 5
    c2.close()
    r = hub.request("PUT", "/devices/" + d, dict(body, status="enabled"), headers={"If-Match": "*"})
    assert r.status == 200
    c2, rc = connect(hub, d, key=key)
    assert rc == 0 and c.wait_closed(5)
    assert hub.request("DELETE", "/devices/" + d).status == 412
    hub.delete_device(d)
    assert c2.wait_closed(5)
    assert hub.request("GET", "/devices/" + d).code == "DeviceNotFound"
    c.close()
    c2.close()


# -- telemetry -------------------------------------------------------------------

def module_client(hub, d=None, m="sensor", **kw):
    if d is None:
        d, _ = edge_device(hub)
    hub.create_module(d, m)
    c, rc = connect(hub, d, m, key=hub.module_key(d, m), **kw)
    assert rc == 0
    return d, c


def test_module_telemetry_is_acknowledged_and_stored_with_its_properties(hub):
    d, c = module_client(hub)
    topic = ("devices/%s/modules/sensor/messages/events/$.on=alerts&$.mid=m-1&$.cid=c%%2F1"
             "&$.ct=application%%2Fjson&$.ce=utf-8&$.cdid=spoofed&level=high"
             "&note=a%%20b%%26c&flag/" % d)
    assert c.publish(topic, b'{"t":21.5}', qos=1) is True
    msgs = hub.telemetry(d, "sensor")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["body"] == b'{"t":21.5}' and m["topic"] == topic
    assert m["systemProperties"] == {
        "outputName": "alerts", "messageId": "m-1", "correlationId": "c/1",
        "contentType": "application/json", "contentEncoding": "utf-8",
        "connectionDeviceId": d, "connectionModuleId": "sensor"}
    assert m["properties"] == {"level": "high", "note": "a b&c", "flag": None}
    c.close()


def test_device_telemetry_at_qos_0_and_without_properties(hub):
    d, key = edge_device(hub)
    c, rc = connect(hub, d, key=key)
    assert c.publish("devices/%s/messages/events/" % d, b"one", qos=0)
    assert c.publish("devices/%s/messages/events/k=v" % d, b"two", qos=1, retain=True)
    msgs = hub.wait_telemetry(2, d)
    assert [m["body"] for m in msgs] == [b"one", b"two"]
    assert msgs[0]["moduleId"] is None and msgs[0]["properties"] == {}
    assert msgs[1]["properties"] == {"k": "v", "mqtt-retain": "true"}
    assert msgs[0]["systemProperties"] == {"connectionDeviceId": d}
    c.close()


def test_a_message_over_256_kib_closes_the_connection(hub):
    d, c = module_client(hub)
    topic = "devices/%s/modules/sensor/messages/events/" % d
    assert c.publish(topic, b"x" * (256 * 1024), qos=1) is True
    assert not c.wait_closed(0.3)
    c.publish(topic + "k=v", b"x" * (256 * 1024), qos=1, timeout=2)
    assert c.wait_closed(5)
    assert len(hub.telemetry(d, "sensor")) == 1
    c.close()


@pytest.mark.parametrize("what", ["another device", "the device topic", "not IoT Hub's",
                                  "a twin topic that does not exist", "QoS 2", "bad escape"])
def test_publishing_where_iot_hub_does_not_allow_closes_the_connection(hub, what):
    d, c = module_client(hub)
    own = "devices/%s/modules/sensor/messages/events/" % d
    assert c.publish(own, b"ok", qos=1) is True
    assert not c.wait_closed(0.2)
    topic, qos = {
        "another device": ("devices/%s/modules/sensor/messages/events/" % uid(), 1),
        "the device topic": ("devices/%s/messages/events/" % d, 1),
        "not IoT Hub's": ("sensors/temperature", 1),
        "a twin topic that does not exist": ("$iothub/twin/POST/?$rid=1", 1),
        "QoS 2": (own, 2),
        "bad escape": (own + "k=%zz", 1),
    }[what]
    c.client.publish(topic, b"no", qos=qos)
    assert c.wait_closed(5), what
    assert [m["body"] for m in hub.telemetry(d, "sensor")] == [b"ok"]
    c.close()


def test_nothing_a_device_publishes_reaches_a_subscriber(hub):
    d, c = module_client(hub)
    assert c.subscribe("devices/%s/modules/sensor/#" % d, qos=1) == (1,)
    assert c.subscribe("#", qos=0) == (128,)
    assert c.subscribe("devices/%s/modules/other/#" % d) == (128,)
    assert c.subscribe("$iothub/twin/res/#", qos=2) == (1,)
    assert c.publish("devices/%s/modules/sensor/messages/events/" % d, b"hi", qos=1)
    assert c.get(timeout=0.5) is None
    assert len(hub.telemetry(d, "sensor")) == 1
    # The control: what the hub itself sends does reach the subscription.
    c.client.publish("$iothub/twin/GET/?$rid=5", b"", qos=0)
    assert c.get("$iothub/twin/res/")[0] == "$iothub/twin/res/200/?$rid=5"
    c.close()


# -- twins -------------------------------------------------------------------------

def test_twin_get_answers_the_asking_client_only_when_it_subscribed(hub):
    d, a = module_client(hub, m="a")
    _, b = module_client(hub, d=d, m="b")
    assert a.twin_get(timeout=0.5) == (None, None)  # no subscription to the responses
    a.subscribe("$iothub/twin/res/#")
    b.subscribe("$iothub/twin/res/#")
    a.client.publish("$iothub/twin/GET/?$rid=77", b"", qos=0)
    topic, body = a.get("$iothub/twin/res/")
    assert topic == "$iothub/twin/res/200/?$rid=77"
    assert json.loads(body) == {"desired": {"$version": 1}, "reported": {"$version": 1}}
    assert b.get(timeout=0.3) is None
    a.close()
    b.close()


def test_reported_patches_merge_bump_the_version_and_reach_the_service(hub):
    d, c = module_client(hub)
    c.subscribe("$iothub/twin/res/#")
    status, topic = c.twin_report({"fw": "1.0", "net": {"ip": "10.0.0.2", "up": True}})
    assert status == 204 and topic == "$iothub/twin/res/204/?$rid=%d&$version=2" % c.rid
    status, topic = c.twin_report({"fw": None, "net": {"up": False}})
    assert status == 204 and topic.endswith("&$version=3")
    status, twin = c.twin_get()
    assert twin["reported"] == {"net": {"ip": "10.0.0.2", "up": False}, "$version": 3}
    svc = hub.get_twin(d, "sensor")
    rep = svc["properties"]["reported"]
    assert rep["net"] == {"ip": "10.0.0.2", "up": False} and rep["$version"] == 3
    assert "$lastUpdated" in rep["$metadata"]["net"]["up"] and "fw" not in rep["$metadata"]
    assert svc["moduleId"] == "sensor" and svc["deviceId"] == d
    c.close()


def nested(levels):
    """{"l1": {"l2": ... {"l<levels>": {"property": "value"}}}}: objects <levels> deep."""
    doc = {"property": "value"}
    for i in range(levels, 0, -1):
        doc = {"l%d" % i: doc}
    return doc


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"42", b'{"a.b": 1}', b'{"$x": 1}',
                                  b'{"a b": 1}', b'{"a\\u0085": 1}', b'{"big": 4503599627370496}',
                                  json.dumps({"s": "x" * 5000}).encode(),
                                  json.dumps(nested(11)).encode()])
def test_a_bad_reported_patch_is_400_and_changes_nothing(hub, body):
    d, c = module_client(hub)
    c.subscribe("$iothub/twin/res/#")
    assert c.twin_report({"ok": 1})[0] == 204
    status, topic = c.twin_report(body)
    assert status == 400 and topic == "$iothub/twin/res/400/?$rid=%d" % c.rid
    assert c.twin_get()[1]["reported"] == {"ok": 1, "$version": 2}
    assert not c.closed.is_set()
    c.close()


def test_reported_properties_follow_iot_hubs_limits(hub):
    d, c = module_client(hub)
    c.subscribe("$iothub/twin/res/#")
    # as the twin docs' example: objects ten levels deep, arrays, 4 KiB strings
    ok = {"deep": nested(9), "list": [1, "two", {"three": 3}], "s": "x" * 4096,
          "n": 4503599627370495, "k" * 1024: True}
    assert c.twin_report(ok)[0] == 204
    assert c.twin_report(nested(10))[0] == 204
    # 32 KiB as IoT Hub counts: names and strings in bytes, 8 a number, 4 a boolean
    c.twin_report({"deep": None, "list": None, "s": None, "n": None, "k" * 1024: None, "l1": None})
    fill = {"k%d" % i: "x" * 4094 for i in range(8)}  # 8 * (2 + 4094) = 32768
    assert c.twin_report(fill)[0] == 204
    assert c.twin_report({"one": True})[0] == 400
    assert c.twin_report({"k0": "x" * 4000})[0] == 204  # smaller again
    c.close()


def test_tags_are_bounded_at_8_kib(hub):
    d, _ = edge_device(hub)
    tags = {"t": "x" * 4000, "u": "x" * 4000}
    assert hub.request("PATCH", "/twins/" + d, {"tags": tags}).status == 200
    r = hub.request("PATCH", "/twins/" + d, {"tags": {"v": "x" * 400}})
    assert r.status == 400 and hub.get_twin(d)["tags"].keys() == {"t", "u"}


def test_desired_patches_are_pushed_to_the_subscribed_identity_only(hub):
    d, a = module_client(hub, m="a")
    _, b = module_client(hub, d=d, m="b")
    a.subscribe("$iothub/twin/PATCH/properties/desired/#")
    hub.patch_twin(d, "a", desired={"color": "red", "size": {"w": 1}})
    topic, body = a.get("$iothub/twin/PATCH/properties/desired/")
    assert topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
    assert json.loads(body) == {"color": "red", "size": {"w": 1}, "$version": 2}
    hub.patch_twin(d, "b", desired={"color": "blue"})  # b did not subscribe
    assert b.get(timeout=0.3) is None and a.get(timeout=0.3) is None
    hub.patch_twin(d, "a", desired={"color": None})
    topic, body = a.get("$iothub/twin/PATCH/properties/desired/")
    assert json.loads(body) == {"color": None, "$version": 3}
    twin = hub.get_twin(d, "a")
    assert twin["properties"]["desired"]["$version"] == 3
    assert twin["properties"]["desired"]["size"] == {"w": 1}
    assert twin["properties"]["desired"]["$metadata"]["$lastUpdatedVersion"] == 3
    a.close()
    b.close()


def test_twin_patches_check_if_match_and_refuse_reported_properties(hub):
    d, _ = edge_device(hub)
    hub.create_module(d, "m")
    etag = hub.get_twin(d, "m")["etag"]
    r = hub.request("PATCH", "/twins/%s/modules/m" % d, {"properties": {"desired": {"x": 1}}},
                    headers={"If-Match": '"AAAAAAAAAAA="'})
    assert r.status == 412
    r = hub.request("PATCH", "/twins/%s/modules/m" % d, {"properties": {"desired": {"x": 1}}},
                    headers={"If-Match": '"%s"' % etag})
    assert r.status == 200 and r.json["etag"] != etag and r.json["properties"]["desired"]["x"] == 1
    r = hub.request("PATCH", "/twins/%s/modules/m" % d, {"properties": {"reported": {"x": 1}}})
    assert r.status == 400
    r = hub.request("PATCH", "/twins/%s/modules/m" % d, {"tags": {"site": "hannover"}})
    assert r.status == 200 and r.json["tags"] == {"site": "hannover"}
    missing = hub.request("GET", "/twins/%s/modules/nosuch" % d)
    assert missing.status == 404 and missing.code == "DeviceNotFound"
    assert hub.request("GET", "/twins/" + d, token=hub.service_token(policy="registryRead",
                       key=new_key())).status == 401


def test_a_silent_patch_shows_as_a_version_gap(hub):
    d, c = module_client(hub)
    c.subscribe("$iothub/twin/PATCH/properties/desired/#")
    hub.patch_twin_silently(d, "sensor", desired={"a": 1})
    hub.patch_twin(d, "sensor", desired={"b": 2})
    topic, body = c.get("$iothub/twin/PATCH/properties/desired/")
    assert json.loads(body) == {"b": 2, "$version": 3}
    c.close()


# -- direct methods ------------------------------------------------------------------

def answer_methods(client, status=200, reply=b'{"done":true}'):

    def loop():
        got = client.get("$iothub/methods/POST/", timeout=10)
        if got:
            rid = got[0].split("?$rid=")[1]
            client.seen = got
            client.publish("$iothub/methods/res/%d/?$rid=%s" % (status, rid), reply, qos=0)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_a_method_reaches_the_module_and_its_answer_the_caller(hub):
    d, c = module_client(hub)
    c.subscribe("$iothub/methods/POST/#")
    t = answer_methods(c, 201, b'{"done":true}')
    status, body = hub.invoke_method(d, "sensor", "reboot", {"delay": 5})
    t.join()
    assert status == 200 and body == {"status": 201, "payload": {"done": True}}
    topic, payload = c.seen
    assert topic.startswith("$iothub/methods/POST/reboot/?$rid=")
    assert json.loads(payload) == {"delay": 5}
    t = answer_methods(c, 500, b"")
    assert hub.invoke_method(d, "sensor", "x") == (200, {"status": 500, "payload": None})
    t.join()
    c.close()


def test_a_method_for_an_identity_not_connected_or_not_subscribed_is_404_at_once(hub):
    d, c = module_client(hub)
    start = time.monotonic()
    status, body = hub.invoke_method(d, "sensor", "reboot")
    assert status == 404 and "404103" in body["Message"]
    c.subscribe("$iothub/methods/POST/#")
    t = answer_methods(c)
    assert hub.invoke_method(d, "sensor", "reboot")[0] == 200
    t.join()
    c.close()
    c.wait_closed(2)
    assert hub.invoke_method(d, "sensor", "reboot")[0] == 404
    assert time.monotonic() - start < 10  # each well before its 30 s timeout
    assert hub.invoke_method(d, "nosuch", "reboot")[0] == 404


def test_a_method_waits_for_a_connection_within_its_connect_timeout(hub):
    d, _ = edge_device(hub)
    hub.create_module(d, "late")
    key = hub.module_key(d, "late")
    later = {}

    def come_online():
        time.sleep(1)
        c, rc = connect(hub, d, "late", key=key)
        c.subscribe("$iothub/methods/POST/#")
        later["c"] = c
        answer_methods(c).join()
    t = threading.Thread(target=come_online, daemon=True)
    t.start()
    status, body = hub.invoke_method(d, "late", "hello", connect_timeout=10)
    t.join()
    assert status == 200 and body["status"] == 200
    later["c"].close()


def test_a_method_nobody_answers_is_504_at_its_timeout(hub):
    d, c = module_client(hub)
    c.subscribe("$iothub/methods/POST/#")
    start = time.monotonic()
    status, body = hub.invoke_method(d, "sensor", "slow", response_timeout=5)
    took = time.monotonic() - start
    assert status == 504 and "504101" in body["Message"]
    assert 4.8 < took < 7
    # an answer after the timeout, or with a request id never sent, goes nowhere
    rid = c.get("$iothub/methods/POST/")[0].split("?$rid=")[1]
    c.publish("$iothub/methods/res/200/?$rid=%s" % rid, b"{}", qos=1)
    c.publish("$iothub/methods/res/200/?$rid=zzz", b"{}", qos=1)
    assert not c.wait_closed(0.3)
    c.close()


def test_method_requests_are_validated(hub):
    d, c = module_client(hub)
    path = "/twins/%s/modules/sensor/methods" % d
    assert hub.request("POST", path, {"payload": 1}).status == 400
    for bad in ({"responseTimeoutInSeconds": 1}, {"responseTimeoutInSeconds": 301},
                {"connectTimeoutInSeconds": 301}, {"connectTimeoutInSeconds": "1"}):
        assert hub.request("POST", path, dict(bad, methodName="m")).status == 400, bad
    assert hub.request("POST", path, {"methodName": "m"}).status == 404  # valid, not subscribed
    c.close()


# -- deployments -------------------------------------------------------------------

def deployment(modules, routes):
    return {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "systemModules": {}, "modules": modules}},
        "$edgeHub": {"properties.desired": {
            "schemaVersion": "1.1", "routes": routes,
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
    }}


def test_apply_configuration_content_sets_the_desired_properties_of_each_module(hub):
    d, _ = edge_device(hub)
    agent, rc = connect(hub, d, EA, key=hub.module_key(d, EA))
    agent.subscribe("$iothub/twin/PATCH/properties/desired/#")
    agent.subscribe("$iothub/twin/res/#")
    v1 = deployment({"a": {"settings": {"image": "reg/a:1"}},
                     "b": {"settings": {"image": "reg/b:1"}}}, {"r1": "FROM /* INTO $upstream"})
    v1["modulesContent"]["a"] = {"properties.desired": {"threshold": 5}}
    hub.apply_configuration(d, v1)
    topic, body = agent.get("$iothub/twin/PATCH/properties/desired/")
    assert topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
    assert json.loads(body)["modules"]["b"]["settings"]["image"] == "reg/b:1"
    status, twin = agent.twin_get()
    assert set(twin["desired"]["modules"]) == {"a", "b"} and twin["desired"]["$version"] == 2
    hub_twin = hub.get_twin(d, "$edgeHub")["properties"]["desired"]
    assert hub_twin["routes"] == {"r1": "FROM /* INTO $upstream"}
    # module a has no identity yet: it gets its desired properties when created
    hub.create_module(d, "a")
    assert hub.get_twin(d, "a")["properties"]["desired"]["threshold"] == 5
    # the second version drops b, changes a: the patch nulls what went away
    v2 = deployment({"a": {"settings": {"image": "reg/a:2"}}}, {"r1": "FROM /* INTO $upstream"})
    hub.apply_configuration(d, v2)
    topic, body = agent.get("$iothub/twin/PATCH/properties/desired/")
    patch = json.loads(body)
    assert patch["$version"] == 3 and patch["modules"]["b"] is None
    assert patch["modules"]["a"]["settings"]["image"] == "reg/a:2"
    assert "runtime" not in patch
    assert set(hub.get_twin(d, EA)["properties"]["desired"]["modules"]) == {"a"}
    # the deployment stays with the device: a module identity made again gets it again
    v2["modulesContent"]["a"] = {"properties.desired": {"threshold": 7}}
    hub.apply_configuration(d, v2)
    hub.delete_module(d, "a")
    hub.create_module(d, "a")
    assert hub.get_twin(d, "a")["properties"]["desired"]["threshold"] == 7
    agent.close()


def test_apply_configuration_content_refuses_what_iot_hub_refuses(hub):
    d, _ = edge_device(hub)
    path = "/devices/%s/applyConfigurationContent" % d
    good = deployment({}, {})
    no_agent = {"modulesContent": {"$edgeHub": good["modulesContent"]["$edgeHub"]}}
    assert hub.request("POST", path, no_agent).status == 400
    assert hub.request("POST", path, {"modulesContent": {"$edgeAgent": {"x": 1}}}).status == 400
    assert hub.request("POST", path, {}).status == 400
    leaf = uid()
    hub.create_device(leaf)
    assert hub.request("POST", "/devices/%s/applyConfigurationContent" % leaf, good).status == 400
    assert hub.request("POST", "/devices/%s/applyConfigurationContent" % uid(), good).status == 404
    assert hub.get_twin(d, EA)["properties"]["desired"]["$version"] == 1
    r = hub.request("POST", path, good)
    assert r.status == 204
    assert hub.get_twin(d, EA)["properties"]["desired"]["$version"] == 2


# -- the real Azure IoT Node SDK -------------------------------------------------------

def start_sdk(hub, cs):
    here = os.path.join(os.path.dirname(__file__), "..", "iothub")
    return subprocess.Popen(["node", os.path.join(here, "sdk_client.js"), cs, hub.ca_file],
                            cwd=here, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def sdk_events(proc, until, timeout=60):
    """The client's JSON lines up to the first event named until. Read from
    the descriptor with a buffer of its own: a buffered readline() after
    select() can leave a second line in Python's buffer, where select()
    never sees it."""
    events = []
    buf = getattr(proc, "sdk_buf", b"")
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            events.append(ev)
            assert ev["event"] not in ("failed", "error"), ev
            if ev["event"] == until:
                proc.sdk_buf = buf
                return events
        if time.monotonic() >= deadline:
            break
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    proc.sdk_buf = buf
    err = proc.stderr.read1(65536).decode(errors="replace") if proc.poll() is not None else ""
    raise AssertionError("SDK client did not reach %s: %s\n%s" % (until, events, err))


@pytest.mark.parametrize("as_module", [True, False], ids=["ModuleClient", "DeviceClient"])
def test_the_azure_iot_node_sdk_works_against_the_standin(hub, as_module):
    d, _ = edge_device(hub)
    m = "sdkmod" if as_module else None
    if as_module:
        hub.create_module(d, m)
    hub.patch_twin(d, m, desired={"interval": 10})
    proc = start_sdk(hub, hub.connection_string(d, m))
    try:
        evs = sdk_events(proc, "ready")
        twin = [e for e in evs if e["event"] == "twin"][0]
        assert twin["desired"]["interval"] == 10 and twin["desired"]["$version"] == 2
        msg = hub.wait_telemetry(1, d, m or "")[0]
        assert json.loads(msg["body"]) == {"temperature": 21.5}
        sp = msg["systemProperties"]
        assert sp["messageId"] == "sdk-msg-1" and sp["correlationId"] == "sdk-corr-1"
        assert sp["contentType"] == "application/json" and sp["contentEncoding"] == "utf-8"
        assert msg["properties"]["source"] == "node-sdk"
        if as_module:
            assert sp["outputName"] == "sdkout" and sp["connectionModuleId"] == m
        rep = hub.get_twin(d, m)["properties"]["reported"]
        assert rep["sdk"] == {"reportedBy": "node", "ok": True}
        hub.patch_twin(d, m, desired={"interval": 20, "mode": "fast"})
        evs = sdk_events(proc, "desired")
        while evs[-1]["delta"].get("$version") != 3:
            evs = sdk_events(proc, "desired")
        assert evs[-1]["delta"]["interval"] == 20 and evs[-1]["delta"]["mode"] == "fast"
        status, body = hub.invoke_method(d, m, "echo", {"n": 7})
        assert status == 200 and body == {"status": 200, "payload": {"echo": {"n": 7}}}
        clients = [c for c in hub.clients() if c["deviceId"] == d]
        assert len(clients) == 1 and clients[0]["clean"] is False
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
            proc.wait()
