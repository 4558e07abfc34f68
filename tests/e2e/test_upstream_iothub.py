"""The hub's cloud link against the IoT Hub stand-in (tests/iothub/), which
checks what a real IoT Hub checks: TLS with its own CA, each identity's SAS
token (and closes a connection whose token expired), one connection per
identity, and the property bag of a device-to-cloud message."""
import time

from conftest import wait_for
from helpers import module_key
from hubkit import Module, make_hub, module_token, username  # noqa: F401
from iothub import IotHubStandin
from upstreamkit import upstream_status

DEVICE = "Hannover01"


def hub_for(make_hub, hub, modules, **up):
    hub.create_device(DEVICE, edge=True)
    for m in modules:
        hub.create_module(DEVICE, m, primary_key=module_key(m, "gen1"),
                          secondary_key=module_key(m, "other"))
    cfg = {"url": hub.mqtts_url, "ca_file": hub.ca_file, "backoff_min_ms": 200,
           "backoff_max_ms": 1000}
    cfg.update(up)
    return make_hub(modules={m: {} for m in modules},
                    routes={"up": "FROM /messages/* INTO $upstream"},
                    extra={"iothub_hostname": hub.hostname, "upstream": cfg})


def local_client(h, hostname, module):
    m = Module(h, module, token=module_token(h.device, module, hostname=hostname),
               user=username(h.device, module, hostname=hostname))
    m.connect()
    return m


def test_iothub_takes_each_module_message_under_its_identity(make_hub, tmp_path):
    hub = IotHubStandin(tmp_path / "iothub").start()
    try:
        h = hub_for(make_hub, hub, ("a", "b"))
        a, b = local_client(h, hub.hostname, "a"), local_client(h, hub.hostname, "b")
        a.send("temp", b'{"t":1}', {"$.mid": "m1", "$.cid": "c1", "$.ct": "application/json",
                                    "$.ce": "utf-8", "site": "H1"})
        b.send("alarm", b"on")
        got = hub.wait_telemetry(1, DEVICE, "a", timeout=20)[0]
        assert got["body"] == b'{"t":1}'
        assert got["properties"] == {"site": "H1"}
        sysp = got["systemProperties"]
        assert sysp["messageId"] == "m1" and sysp["correlationId"] == "c1"
        assert sysp["contentType"] == "application/json" and sysp["contentEncoding"] == "utf-8"
        assert sysp["outputName"] == "temp"
        assert sysp["connectionDeviceId"] == DEVICE and sysp["connectionModuleId"] == "a"
        got = hub.wait_telemetry(1, DEVICE, "b", timeout=20)[0]
        assert got["body"] == b"on" and got["systemProperties"]["connectionModuleId"] == "b"
        clients = {c["clientId"] for c in hub.clients()}
        assert {DEVICE + "/a", DEVICE + "/b"} <= clients
    finally:
        hub.stop()


def test_tokens_are_renewed_before_iothub_would_close_the_connection(make_hub, tmp_path):
    # No clock skew allowed: a token is refused the second it expires.
    hub = IotHubStandin(tmp_path / "iothub", sas_skew=0).start()
    try:
        h = hub_for(make_hub, hub, ("a",), token_ttl_secs=10)
        a = local_client(h, hub.hostname, "a")
        expiries = set()
        for i in range(44):  # 22 s: two renewals, one message every half second
            a.send("o", b"%d" % i)
            expiries |= {c["tokenExpiry"] for c in hub.clients()
                         if c["clientId"] == DEVICE + "/a"}
            time.sleep(0.5)
        got = hub.wait_telemetry(44, DEVICE, "a", timeout=20)
        assert sorted(int(m["body"]) for m in got) == list(range(44))
        log = h.log_text()
        assert log.count("upstream a: renewing its token") >= 2, log
        assert "connection closed by the upstream" not in log, log
        assert len(expiries) >= 3, expiries
        assert upstream_status(h)["resent"] == 0
    finally:
        hub.stop()


def test_a_module_whose_identity_iothub_does_not_know_waits_alone(make_hub, tmp_path):
    hub = IotHubStandin(tmp_path / "iothub").start()
    try:
        h = hub_for(make_hub, hub, ("a",))
        h.modules["ghost"] = {}
        h.write_config()
        h.reload()
        a, ghost = local_client(h, hub.hostname, "a"), local_client(h, hub.hostname, "ghost")
        ghost.send("o", b"from a module IoT Hub does not know")
        a.send("o", b"from a known module")
        assert hub.wait_telemetry(1, DEVICE, "a", timeout=20)[0]["body"] == b"from a known module"
        wait_for(lambda: "(CONNACK 5)" in (upstream_status(h)["identities"]["ghost"]
                                            .get("last_error") or ""), 10,
                 what="ghost refused at CONNECT")
        st = upstream_status(h)
        assert st["identities"]["a"]["state"] == "connected"
        assert st["identities"]["ghost"]["backlog"] == 1
        # Its identity appears: its message goes.
        hub.create_module(DEVICE, "ghost", primary_key=module_key("ghost", "gen1"),
                          secondary_key=module_key("ghost", "other"))
        got = hub.wait_telemetry(1, DEVICE, "ghost", timeout=20)
        assert got[0]["body"] == b"from a module IoT Hub does not know"
    finally:
        hub.stop()
