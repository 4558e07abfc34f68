"""The hub's TLS gateway on its own: MQTT with TLS as the Azure IoT SDKs
speak it (the C SDK's topic forms, Node's trailing slash, sessions kept
across reconnects), listeners that follow the config, and a certificate
taken anew after a reload. Certificates are made here with the openssl
command line; the gateway listens on addresses of its own (127.66.1.x)."""
import os
import socket
import ssl
import subprocess

from conftest import free_port
from hubkit import ROUTE_AB, Module, make_hub, parse_bag  # noqa: F401 - fixture
from helpers import wait_for

ADDR = "127.66.1.1"


def make_certs(d, name="gw.example.test"):
    """A CA and a server certificate (with the CA's chain) in directory d."""
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,  # noqa: E731
                                    stderr=subprocess.DEVNULL, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test CA", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "gw.key", "-out", "gw.csr", "-subj", "/CN=" + name)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" % name)
    run("openssl", "x509", "-req", "-in", "gw.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "ext")
    with open(os.path.join(d, "gw.pem"), "w") as out:
        for part in ("leaf.pem", "ca.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    return os.path.join(d, "ca.pem")


def gateway_hub(make_hub, tmp_path, mqtt_addrs, https_addrs=(), start=True):
    ca = make_certs(str(tmp_path))
    gw = {"cert": str(tmp_path / "gw.pem"), "key": str(tmp_path / "gw.key"),
          "mqtt": list(mqtt_addrs), "https": list(https_addrs)}
    hub = make_hub(modules={"a": {}, "b": {}}, routes={"ab": ROUTE_AB},
                   extra={"gateway": gw}, start=start)
    hub.ca = ca
    return hub


def tls_module(hub, name, addr, **kw):
    host, port = addr.rsplit(":", 1)
    return Module(hub, name, tls=(host, int(port), hub.ca), **kw)


def test_sdk_topic_forms_over_the_gateway(make_hub, tmp_path):
    addr = "%s:%d" % (ADDR, free_port(ADDR))
    hub = gateway_hub(make_hub, tmp_path, [addr])
    a, b = tls_module(hub, "a", addr), tls_module(hub, "b", addr)
    a.connect()
    b.connect()
    # The C SDK subscribes to its inputs with devices/<d>/modules/<m>/#.
    assert b.subscribe("devices/%s/modules/b/#" % hub.device) == (1,)
    # The C SDK puts user properties before system ones; Node ends the bag
    # with a '/'.
    events = "devices/%s/modules/a/messages/events/" % hub.device
    a.publish(events + "seq=1&%24.on=out1", b"c")
    a.publish(events + "%24.on=out1&seq=2/", b"node")
    for seq, body in (("1", b"c"), ("2", b"node")):
        m = b.get()
        prefix = "devices/%s/modules/b/inputs/in1/" % hub.device
        assert m.topic.startswith(prefix) and m.payload == body, m.topic
        bag = parse_bag(m.topic, prefix)
        assert bag["seq"] == seq and bag["$.cmid"] == "a" and "$.on" not in bag, bag
    # A twin answer has ?$rid= first, as the C SDK reads it.
    assert b.subscribe("$iothub/twin/res/#") == (1,)
    b.publish("$iothub/twin/GET/?$rid=42", b" ")
    m = b.get()
    assert m.topic == "$iothub/twin/res/200/?$rid=42", m.topic
    assert "gateway" in hub.log_text() and "Hannover01/b (gateway" in hub.log_text()


def test_a_persistent_session_over_the_gateway_keeps_its_subscriptions(make_hub, tmp_path):
    addr = "%s:%d" % (ADDR, free_port(ADDR))
    hub = gateway_hub(make_hub, tmp_path, [addr])
    b = tls_module(hub, "b", addr, clean_session=False)
    b.connect()
    b.subscribe("devices/%s/modules/b/inputs/#" % hub.device)
    b.close()
    a = tls_module(hub, "a", addr)
    a.connect()
    a.send("out1", b"while away")
    # As the Node SDK renewing its token: connect again, subscribe to nothing.
    b = tls_module(hub, "b", addr, clean_session=False)
    flags = b.connect()
    assert flags["session present"] == 1
    assert b.get().payload == b"while away"


def test_a_busy_port_is_bound_once_it_is_free(make_hub, tmp_path):
    port = free_port(ADDR)
    addr = "%s:%d" % (ADDR, port)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind((ADDR, port))
    squatter.listen(1)
    hub = gateway_hub(make_hub, tmp_path, [addr])
    hub.wait_log("listen on %s: Address already in use (trying again every 5 s)" % addr)
    squatter.close()
    hub.wait_log("gateway: MQTT with TLS on %s" % addr, timeout=15)
    m = tls_module(hub, "a", addr)
    m.connect()
    m.close()


def test_a_reload_follows_the_addresses_and_takes_a_new_certificate(make_hub, tmp_path):
    old, new = "%s:%d" % (ADDR, free_port(ADDR)), "127.66.1.2:%d" % free_port("127.66.1.2")
    hub = gateway_hub(make_hub, tmp_path, [old], [])
    ctx = ssl.create_default_context(cafile=hub.ca)
    ctx.check_hostname = False

    def serial(addr):
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                return s.getpeercert()["serialNumber"]
    first = serial(old)
    # A new certificate at the same path, and the gateway moved.
    (tmp_path / "again").mkdir()
    make_certs(str(tmp_path / "again"))
    for f in ("gw.pem", "gw.key", "ca.pem"):
        os.replace(str(tmp_path / "again" / f), str(tmp_path / f))
    hub.extra["gateway"]["mqtt"] = [new]
    hub.write_config()
    hub.reload()
    hub.wait_log("gateway: no longer listening on %s" % old)
    ctx = ssl.create_default_context(cafile=hub.ca)
    ctx.check_hostname = False
    assert serial(new) != first
    host, port = old.rsplit(":", 1)
    wait_for(lambda: socket.socket().connect_ex((host, int(port))) != 0, 5,
             what="the old address closed")
