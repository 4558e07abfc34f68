"""The IoT Hub stand-in (tests/iothub) against IoT Hub's documented behaviour:
SAS tokens, the identity registry over REST, the MQTT device endpoint
(CONNACK codes, one connection per identity, topics, telemetry, twins, direct
methods), the service API, and once the real Azure IoT Node SDK.

Every negative case runs next to its positive control.
"""
import json
import os
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
    import base64, hashlib, hmac, time
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
    assert hub.request("PUT", mpath(d, "a/b"), module_body(d, "a/b"), token=tok).status in (400, 404)
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


def test_module_connections_are_checked_against_the_keys_the_registry_holds(hub):
    d, dkey = edge_device(hub)
    tok = hub.device_token(d, dkey)
    k1, k2 = new_key(), new_key()
    hub.request("PUT", mpath(d, "m"), module_body(d, "m", k1), token=tok)
    c, rc = connect(hub, d, "m", key=k1)
    assert rc == 0
    c.close()
    c, rc = connect(hub, d, "m", key=k2)
    assert rc == 5
    c.close()
    hub.request("PUT", mpath(d, "m"), module_body(d, "m", k2), token=tok, headers={"If-Match": "*"})
    c, rc = connect(hub, d, "m", key=k1)
    assert rc == 5
    c.close()
    c, rc = connect(hub, d, "m", key=k2)
    assert rc == 0
    c.close()


def test_connack_refuses_bad_tokens_unknown_identities_and_malformed_usernames(hub):
    d, dkey = edge_device(hub)
    ok, rc = connect(hub, d, key=dkey, tls=False)
    assert rc == 0
    ok.close()
    cases = {
        "expired token": dict(token=sas_token("%s/devices/%s" % (hub.hostname, d), dkey,
                                              expiry=int(__import__("time").time()) - 3600)),
        "wrong key": dict(key=new_key()),
        "no password": dict(token=""),
        "garbage password": dict(token="SharedAccessSignature sr=x"),
        "another device's token": dict(token=hub.device_token(uid(), dkey)),
        "client id of another identity": dict(key=dkey, client_id=d + "/nosuch"),
        "another hub in the username": dict(key=dkey, username="other.net/%s/?api-version=2021-04-12" % d),
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
                 "%s/%s/?api-version=2020-09-30&DeviceClientType=iothubclient%%2F1.2" % (hub.hostname, d),
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
        short, rc = connect(h, d, token=h.device_token(d, key, ttl=2))
        assert rc == 0
        assert not short.wait_closed(1.0)
        assert short.wait_closed(4)
        short.close()
        long, rc = connect(h, d, token=h.device_token(d, key, ttl=3600))
        assert rc == 0 and not long.wait_closed(1.5)
        long.close()
    finally:
        h.stop()


def test_a_restarted_standin_keeps_its_ca_identities_and_ports(tmp_path):
    h = IotHubStandin(tmp_path / "hub").start()
    try:
        d, key = uid(), new_key()
        h.create_device(d, primary_key=key)
        ports, ca = (h.mqtt_port, h.mqtts_port, h.https_port), open(h.ca_file).read()
        h.restart()
        assert (h.mqtt_port, h.mqtts_port, h.https_port) == ports
        assert open(h.ca_file).read() == ca
        c, rc = connect(h, d, key=key)
        assert rc == 0
        c.close()
    finally:
        h.stop()
