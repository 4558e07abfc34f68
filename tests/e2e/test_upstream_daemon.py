"""The cloud link from a daemon's device: offline for a while with a daemon
restart in between, then everything still alive reaches the upstream (a
real mosquitto on loopback, identities "none"); `berth list` and `berth
check` say how the link is doing."""
import json
import os
import time

import pytest

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import manifest, module, unique
from upstreamkit import ModuleClient, brokers, clouds, hub_status, parse_bag  # noqa: F401

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]


def upstream_config(broker, **extra):
    cfg = {"url": broker.url(), "identities": "none"}
    cfg.update(extra)
    return cfg


def test_ten_thousand_offline_messages_survive_a_daemon_restart_and_all_arrive(
        daemons, image, brokers, clouds):
    broker = brokers()
    m = unique("sensor")
    routes = {"data": "FROM /messages/modules/%s/outputs/data INTO $upstream" % m,
              "brief": {"route": "FROM /messages/modules/%s/outputs/brief INTO $upstream" % m,
                        "timeToLiveSecs": 5}}
    d = daemons(manifest({m: module(image, SLEEP)}, routes=routes), hub=True,
                upstream=upstream_config(broker), deployments="local").start()
    d.wait_status(m)
    wait_for(lambda: os.path.exists(os.path.join(d.berth.run_dir, "hubctl.sock")), 10,
             what="the hub")
    if "store" not in hub_status(d):
        pytest.skip("needs the durable store behind hub/store.h: the in-memory store keeps "
                    "nothing across a hub restart")
    client = ModuleClient(d, m)
    n = 10000
    props = lambda i: {"$.mid": "mid-%d" % i, "$.ct": "application/json", "$.ce": "utf-8",
                       "seq": str(i)}
    client.send_many("data", n, props, lambda i: json.dumps({"i": i}).encode())
    client.send_many("brief", 50, lambda i: {"seq": "brief-%d" % i})
    sent_at = time.monotonic()
    client.close()
    st = hub_status(d)
    assert st["queues"]["$upstream"]["messages"] == n + 50, st["queues"]
    assert st["upstream"]["state"] == "disconnected"
    # Offline, the daemon (and with it the hub) restarts.
    d.terminate()
    d.start()
    d.wait_status(m)
    wait_for(lambda: os.path.exists(os.path.join(d.berth.run_dir, "hubctl.sock")) and
             hub_status(d)["queues"].get("$upstream", {}).get("messages", 0) > 0, 20,
             what="the hub back with its store")
    time.sleep(max(0, 5.5 - (time.monotonic() - sent_at)))  # the brief ones expire
    broker.start()
    cloud = clouds(broker)
    cloud.wait(n, timeout=120)
    wait_for(lambda: hub_status(d)["upstream"]["backlog"] == 0, 30, what="an empty backlog")
    time.sleep(0.5)
    got = cloud.all()
    seqs = []
    for topic, body in got:
        assert topic.startswith("devices/Hannover01/modules/%s/messages/events/" % m), topic
        bag = parse_bag(topic)
        assert not bag["seq"].startswith("brief"), "an expired message went upstream"
        i = int(bag["seq"])
        assert bag == {"$.mid": "mid-%d" % i, "$.ct": "application/json", "$.ce": "utf-8",
                       "$.on": "data", "seq": str(i)}
        assert json.loads(body) == {"i": i}
        seqs.append(i)
    assert set(seqs) == set(range(n))
    dups = len(seqs) - n - cloud.redelivered
    assert 0 <= dups <= 64, dups  # at most the in-flight window


def test_list_and_check_show_the_link_and_what_waits(daemons, image, brokers, clouds):
    broker = brokers()
    m = unique("sensor")
    d = daemons(manifest({m: module(image, SLEEP)},
                         routes={"up": "FROM /messages/* INTO $upstream"}),
                hub=True, upstream=upstream_config(broker), deployments="local").start()
    d.wait_status(m)
    client = ModuleClient(d, m)
    client.send_many("data", 25)
    client.close()
    wait_for(lambda: hub_status(d)["upstream"]["backlog"] == 25, 10, what="the backlog")
    out = d.berth("list").stdout.decode()
    assert "upstream %s: not connected since " % broker.url() in out, out
    assert "25 messages waiting, the oldest" in out, out
    assert "module identities: kept by the upstream" in out
    check = d.berth("check", "--config", d.config_path, check=False).stdout.decode()
    assert "\u203c upstream %s: not connected" % broker.url() in check, check
    queues = d.berth("queues").stdout.decode()
    assert any(l.split()[:2] == ["$upstream", "25"] for l in queues.splitlines()), queues
    broker.start()
    clouds(broker).wait(25)
    wait_for(lambda: hub_status(d)["upstream"]["backlog"] == 0, 20, what="the drain")
    out = d.berth("list").stdout.decode()
    assert "upstream %s: connected since " % broker.url() in out, out
    assert "no message waiting" in out
    check = d.berth("check", "--config", d.config_path, check=False).stdout.decode()
    assert "\u221a upstream %s: connected" % broker.url() in check, check
