"""The cloud link from the hub: messages routed to $upstream leave for a real
MQTT broker (mosquitto on loopback standing in for IoT Hub with identities
"none"), one connection per sending identity, with their properties, in
priority order, never once expired; the link survives the broker going
away, refuses nothing it should send and drops what the upstream refuses."""
import ctypes
import os
import subprocess
import time

from conftest import wait_for
from hubkit import Module, make_hub  # noqa: F401
from upstreamkit import brokers, clouds, make_ca, parse_bag, upstream_status  # noqa: F401

UP_ROUTE = {"up": "FROM /messages/* INTO $upstream"}


def sender(hub, name="a"):
    m = Module(hub, name)
    m.connect()
    return m


def upstream_hub(make_hub, broker, modules=("a",), routes=None, url=None, hub=None, **up):
    cfg = {"url": url or broker.url(), "backoff_min_ms": 200, "backoff_max_ms": 1000}
    cfg.update(up)
    extra = dict(hub or {}, upstream=cfg)
    return make_hub(modules={m: {} for m in modules}, routes=routes or UP_ROUTE, extra=extra)


def test_messages_go_up_under_the_sender_identity_with_their_properties(make_hub, brokers,
                                                                       clouds):
    broker = brokers().start()
    cloud = clouds(broker)
    hub = upstream_hub(make_hub, broker, modules=("a", "b"))
    a, b = sender(hub, "a"), sender(hub, "b")
    a.send("temp", b'{"t": 21}', {"$.mid": "m-1", "$.cid": "c-1", "$.ct": "application/json",
                                  "$.ce": "utf-8", "site": "Hannover 1", "k=&": "v/?"})
    b.send("alarm", b"on")
    got = dict(cloud.wait(2))
    topics = {t.split("/messages/events/")[0]: t for t in got}
    ta = topics["devices/%s/modules/a" % hub.device]
    tb = topics["devices/%s/modules/b" % hub.device]
    assert got[ta] == b'{"t": 21}' and got[tb] == b"on"
    assert parse_bag(ta) == {"$.mid": "m-1", "$.cid": "c-1", "$.ct": "application/json",
                             "$.ce": "utf-8", "$.on": "temp", "site": "Hannover 1",
                             "k=&": "v/?"}
    assert parse_bag(tb) == {"$.on": "alarm"}
    # One connection per identity, as IoT Hub wants them.
    log = broker.log_text()
    for m in ("a", "b"):
        assert "as %s/%s (p2, c1, k60, u'myhub.example.net/%s/%s/?api-version=2021-04-12')" % (
            hub.device, m, hub.device, m) in log, log
    wait_for(lambda: upstream_status(hub)["backlog"] == 0, 10, what="both PUBACKs")
    st = upstream_status(hub)
    assert st["state"] == "connected" and st["connected"] == 2
    assert st["identities"]["a"]["acked"] == 1
    assert hub.control_call({"op": "status"})["queues"]["$upstream"]["messages"] == 0


def test_offline_messages_wait_then_go_by_priority_and_never_once_expired(make_hub, brokers,
                                                                         clouds):
    broker = brokers()
    routes = {"urgent": {"route": "FROM /messages/modules/a/outputs/alarm INTO $upstream",
                         "priority": 0},
              "brief": {"route": "FROM /messages/modules/a/outputs/brief INTO $upstream",
                        "timeToLiveSecs": 2},
              "rest": "FROM /messages/modules/a/outputs/data INTO $upstream"}
    hub = upstream_hub(make_hub, broker, routes=routes)
    a = sender(hub)
    for i in range(20):
        a.send("data", b"d%d" % i)
    for i in range(5):
        a.send("brief", b"b%d" % i)
    a.send("alarm", b"fire")
    st = upstream_status(hub)
    assert st["state"] == "disconnected" and st["backlog"] == 26, st
    assert "cannot connect" in st["last_error"] or "closed" in st["last_error"], st
    assert st["oldest_age_secs"] >= 0
    time.sleep(2.5)  # the brief ones expire
    broker.start()
    cloud = clouds(broker)
    got = [p for _, p in cloud.wait(21)]
    time.sleep(0.5)
    got = [p for _, p in cloud.all()]
    assert got == [b"fire"] + [b"d%d" % i for i in range(20)], got
    wait_for(lambda: upstream_status(hub)["backlog"] == 0, 10, what="the last PUBACK")
    assert upstream_status(hub)["sent"] == 21


def test_the_broker_away_and_back_three_times_mid_drain(make_hub, brokers, clouds):
    broker = brokers()
    hub = upstream_hub(make_hub, broker)
    a = sender(hub)
    n = 6000
    for i in range(n):
        a.publish("devices/%s/modules/a/messages/events/$.on=o&i=%d" % (hub.device, i),
                  b"x" * 64, qos=1 if i % 500 == 499 else 0)
    wait_for(lambda: upstream_status(hub)["backlog"] == n, 20, what="all messages stored")
    broker.start()
    cloud = clouds(broker)
    for _ in range(3):
        wait_for(lambda: cloud.count() > 0 and upstream_status(hub)["acked"] > 0, 20,
                 what="the drain to start")
        mark = upstream_status(hub)["acked"]
        wait_for(lambda: upstream_status(hub)["acked"] > mark + 200, 20, what="progress")
        broker.stop()
        time.sleep(0.5)
        broker.start()
    got = cloud.wait(n, timeout=60)
    wait_for(lambda: upstream_status(hub)["backlog"] == 0, 30, what="an empty backlog")
    time.sleep(0.5)
    got = cloud.all()
    seen = [int(parse_bag(t)["i"]) for t, _ in got]
    assert set(seen) == set(range(n))
    dups = len(seen) - n - cloud.redelivered
    st = upstream_status(hub)
    # Duplicates come only from what was in flight when the broker went.
    assert dups <= 3 * 64, dups
    assert dups <= st["resent"], (dups, st)
    assert st["refused"] == 0
    assert "upstream a: connection closed by the upstream" in hub.log_text() or \
        "upstream a: connection lost" in hub.log_text()


def test_tls_trusts_the_ca_file_and_checks_the_host_name(make_hub, brokers, clouds, tmp_path):
    ca, cert, key = make_ca(str(tmp_path), names=["localhost"])
    broker = brokers(tls=(ca, cert, key)).start()
    cloud = clouds(broker, ca=ca, host="localhost")
    # The certificate names localhost, not 127.0.0.1: refused.
    wrong = upstream_hub(make_hub, broker, url=broker.url("127.0.0.1"), ca_file=ca)
    sender(wrong).send("o", b"never")
    wait_for(lambda: "certificate" in (upstream_status(wrong).get("last_error") or "") or
             "TLS" in (upstream_status(wrong).get("last_error") or ""), 10,
             what="a refused certificate")
    wrong.stop()
    # Without the CA file the system CAs alone do not trust it.
    untrusted = upstream_hub(make_hub, broker, url=broker.url("localhost"))
    sender(untrusted).send("o", b"never either")
    wait_for(lambda: upstream_status(untrusted).get("last_error"), 10, what="a failure")
    untrusted.stop()
    hub = upstream_hub(make_hub, broker, url=broker.url("localhost"), ca_file=ca)
    sender(hub).send("o", b"over TLS")
    assert [p for _, p in cloud.wait(1)] == [b"over TLS"]
    time.sleep(0.3)
    assert [p for _, p in cloud.all()] == [b"over TLS"]


def test_a_message_the_upstream_refuses_is_dropped_and_counted(make_hub, brokers, clouds):
    broker = brokers(extra="max_packet_size 8192\n").start()
    cloud = clouds(broker)
    hub = upstream_hub(make_hub, broker, hub={"max_packet": 512 * 1024})
    a = sender(hub)
    a.send("o", b"before")
    a.send("o", b"B" * 20000)  # the broker closes the connection on it
    a.send("o", b"after")
    # Within the hub's 256 KiB for a body, over IoT Hub's 256 KiB with its
    # properties: never sent.
    a.send("o", b"H" * 250 * 1024, {"pad": "p" * 8000})
    a.send("o", b"last")
    got = [p for _, p in cloud.wait(3, timeout=30)]
    wait_for(lambda: upstream_status(hub)["refused"] == 2, 20, what="two refusals")
    # The reader may have "last" before the hub has its PUBACK.
    wait_for(lambda: upstream_status(hub)["backlog"] == 0, 10, what="an empty backlog")
    got = [p for _, p in cloud.all()]
    assert got == [b"before", b"after", b"last"], [g[:10] for g in got]
    log = hub.log_text()
    assert "refused: the connection closed 3 times with it alone in flight" in log
    assert "over IoT Hub's limit of 262144; dropped" in log


def test_the_hub_maps_no_mqtt_or_tls_library_without_an_upstream(make_hub, brokers):
    hub = make_hub(modules={"a": {}}, routes=UP_ROUTE)
    sender(hub).send("o", b"kept")
    with open("/proc/%d/maps" % hub.proc.pid) as f:
        maps = f.read()
    assert "libmosquitto" not in maps and "libssl" not in maps
    broker = brokers().start()
    hub2 = upstream_hub(make_hub, broker)
    sender(hub2).send("o", b"sent")
    wait_for(lambda: upstream_status(hub2)["acked"] == 1, 10, what="the message acked")
    with open("/proc/%d/maps" % hub2.proc.pid) as f:
        assert "libmosquitto" in f.read()


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, stdout=subprocess.DEVNULL)


def enter_netns(name):
    """preexec_fn: the child joins network namespace name (setns(2))."""
    def enter():
        fd = os.open("/run/netns/" + name, os.O_RDONLY)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)
    return enter


def retry_in(hub, module="a"):
    return upstream_status(hub)["identities"][module].get("retry_in_ms", 0)


def test_reconnects_at_once_when_an_address_or_a_default_route_appears(make_hub, brokers):
    """A device behind a link that comes back: two hubs in a namespace of the
    test's own, one reaching the upstream on the link's subnet, one through
    its default route. Each waits out a growing backoff while the link is
    down, and connects at once when the kernel reports the address, or the
    default route, appearing again."""
    n = os.getpid() % 200 + 20
    ns, veth, peer = "berth-up%d" % n, "bup%d" % n, "bupn%d" % n
    near, far, dev = "10.211.%d.1" % n, "10.213.%d.1" % n, "10.211.%d.2/24" % n
    ip("netns", "add", ns)
    try:
        ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", ns)
        ip("addr", "add", near + "/24", "dev", veth)
        ip("addr", "add", far + "/32", "dev", veth)
        ip("link", "set", veth, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", dev, "dev", peer)
        ip("-n", ns, "link", "set", peer, "up")
        ip("-n", ns, "route", "add", "default", "via", near)
        broker = brokers(addr=near, also=[far]).start()
        hubs = {}
        for name, host in (("subnet", near), ("route", far)):
            hubs[name] = make_hub(modules={"a": {}}, routes=UP_ROUTE, preexec_fn=enter_netns(ns),
                                  extra={"upstream": {"url": broker.url(host)}})
            sender(hubs[name]).send("o", b"first")
        for h in hubs.values():
            wait_for(lambda: upstream_status(h)["acked"] == 1, 10, what="the first message")
        # The link goes: the broker closes, the address and route go with it.
        broker.stop()
        ip("-n", ns, "addr", "flush", "dev", peer)
        broker.start()
        for h in hubs.values():
            sender(h).send("o", b"second")
        for h in hubs.values():
            wait_for(lambda: retry_in(h) >= 3000, 20, what="a backoff of 3 s or more")
        # The address returns: the hub on the subnet connects at once.
        ip("-n", ns, "addr", "add", dev, "dev", peer)
        t0 = time.monotonic()
        wait_for(lambda: upstream_status(hubs["subnet"])["acked"] == 2, 2.5,
                 what="the reconnect on the new address")
        assert time.monotonic() - t0 < 2.5
        assert "network change (new IPv4 address" in hubs["subnet"].log_text()
        h = hubs["route"]
        assert upstream_status(h)["acked"] == 1  # no route yet
        wait_for(lambda: retry_in(h) >= 3000, 20, what="a backoff of 3 s or more")
        ip("-n", ns, "route", "add", "default", "via", near)
        wait_for(lambda: upstream_status(h)["acked"] == 2, 2.5,
                 what="the reconnect on the new default route")
        assert "network change (new IPv4 default route)" in h.log_text()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", veth], check=False, stderr=subprocess.DEVNULL)
