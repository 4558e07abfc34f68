"""metrics_listen: Prometheus text from the daemon (edgeAgent's metrics, each
module's cgroup) and the hub (edgeHub's), checked with promtool, moving
when messages flow; scrapes bounded and leaving the daemon's memory as it
was."""
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from conftest import free_port, wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import manifest, module, unique
from hubkit import Module
from instance_helpers import rss_kb
from upstreamkit import ModuleClient, brokers, clouds  # noqa: F401 - fixtures

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


class DaemonHub:
    """What hubkit's Module needs of a hub, for the daemon's."""

    def __init__(self, d):
        self.d = d
        self.socket = os.path.join(d.berth.run_dir, "hub.sock")
        self.device = "Hannover01"

    def token(self, name):
        return self.d.berth("token", name).stdout.decode().strip()


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def series(text):
    """{(name, frozenset of label pairs): value}"""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SERIES.match(line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(text, name, **labels):
    found = [v for (n, ls), v in series(text).items()
             if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


# edgeAgent's own names are camelCase, and it keeps created_pids_total a
# gauge: promtool's lint (exit 3) says so, and is held to exactly that.
EDGEAGENT_LINT = re.compile(
    r"^edgeAgent_\w+ metric names should be written in 'snake_case' not 'camelCase'$|"
    r"^edgeAgent_created_pids_total non-counter metrics should not have \"_total\" suffix$")


def promtool(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode()
    problems = [l for l in out.splitlines() if l and not EDGEAGENT_LINT.match(l)]
    assert p.returncode in (0, 3) and not problems, out
    # The positive control: promtool does find what breaks the format.
    bad = subprocess.run(["promtool", "check", "metrics"], input=b"berth_x{a=\"1\" 1\n",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert bad.returncode == 1, bad.stdout.decode()


def metrics_daemon(daemons, image, modules, routes=None, **kw):
    port = free_port()
    d = daemons(manifest(modules, routes=routes or {"r": "FROM /messages/* WHERE $outputName = 'out1' INTO "
                                              "BrokeredEndpoint(\"/modules/%s/inputs/in1\")"
                                              % kw.pop("receiver", "nobody")}),
                hub=True, metrics_listen="127.0.0.1:%d" % port, **kw).start()
    return d, port


def test_metrics_pass_promtool_and_move_when_messages_flow(daemons, image):
    a, b = unique("sender"), unique("receiver")
    d, port = metrics_daemon(daemons, image, {a: module(image, SLEEP), b: module(image, SLEEP)},
                             receiver=b)
    d.wait_status(a)
    d.wait_status(b)
    wait_for(lambda: "edgehub_connected_clients" in scrape(port), 10, what="the hub's part")
    text = scrape(port)
    promtool(text)
    common = {"iothub": "myhub.example.net", "edge_device": "Hannover01"}
    assert value(text, "berth_hub_up", **common) == 1
    assert value(text, "edgeAgent_module_start_total", module_name=a, **common) == 1
    assert value(text, "edgeAgent_used_memory_bytes", module_name=a) > 0
    assert value(text, "edgeAgent_created_pids_total", module_name=a) == 1
    assert value(text, "berth_module_running", module_name=b) == 1
    assert value(text, "edgeAgent_available_disk_space_bytes", disk_filetype="state") > 0
    hub = DaemonHub(d)
    sender, receiver = Module(hub, a), Module(hub, b)
    try:
        sender.connect()
        for i in range(5):
            sender.send("out1", b"m%d" % i)
        sender.send("elsewhere", b"no route takes this")
        text = scrape(port)
        promtool(text)
        ident = lambda m: "Hannover01/" + m  # noqa: E731
        assert value(text, "edgehub_messages_received_total", id=ident(a),
                     route_output="out1") == 5
        assert value(text, "edgehub_messages_dropped_total", reason="no_route",
                     **{"from": ident(a), "from_route_output": "elsewhere"}) == 1
        endpoint = "Hannover01/%s/in1" % b
        assert value(text, "edgehub_queue_length", endpoint=endpoint) == 5
        assert value(text, "edgehub_connected_clients") == 1
        receiver.connect()
        receiver.subscribe("devices/Hannover01/modules/%s/#" % b)
        for _ in range(5):
            receiver.get(10)
        wait_for(lambda: value(scrape(port), "edgehub_queue_length", endpoint=endpoint) == 0,
                 10, what="the queue to empty")
        text = scrape(port)
        promtool(text)
        assert value(text, "edgehub_messages_sent_total", to_route_input="in1",
                     **{"from": ident(a), "to": ident(b), "from_route_output": "out1",
                        "priority": "2000000000"}) == 5
        assert value(text, "edgehub_client_connect_success_total", id=ident(b)) == 1
    finally:
        sender.close()
        receiver.close()
    # A restart counts, the CPU a module burns shows.
    d.berth("exec", a, "/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
    d.berth("restart", b)
    d.wait_status(b)
    text = scrape(port)
    assert value(text, "berth_module_cpu_seconds_total", module_name=a) > 0
    assert value(text, "edgeAgent_module_stop_total", module_name=b) == 1
    assert value(text, "edgeAgent_module_start_total", module_name=b) == 2


def test_the_upstream_link_its_queue_and_its_oldest_message_show(daemons, image, brokers,
                                                                  clouds):
    broker = brokers()
    m = unique("sensor")
    d, port = metrics_daemon(daemons, image, {m: module(image, SLEEP)},
                             routes={"up": "FROM /messages/* INTO $upstream"},
                             upstream={"url": broker.url(), "identities": "none"},
                             deployments="local")
    d.wait_status(m)
    wait_for(lambda: "edgehub_connected_clients" in scrape(port), 10, what="the hub's part")
    client = ModuleClient(d, m)
    try:
        client.send_many("data", 3)
    finally:
        client.close()
    ident = "Hannover01/" + m
    # Offline: the link is down, the messages wait and age.
    wait_for(lambda: "berth_hub_upstream_connected{" in scrape(port), 10,
             what="a connection for the sender's identity")
    time.sleep(1.1)
    text = scrape(port)
    promtool(text)
    assert value(text, "berth_hub_upstream_up") == 0
    assert value(text, "berth_hub_upstream_connected", id=ident) == 0
    assert value(text, "edgehub_queue_length", endpoint="iothub") == 3
    assert value(text, "berth_hub_queue_oldest_age_seconds", endpoint="iothub") >= 1
    assert value(text, "berth_hub_store_bytes") > 0
    # The broker comes: the link is up, the queue empties, the sends count.
    broker.start()
    cloud = clouds(broker)
    cloud.wait(3, timeout=60)
    wait_for(lambda: value(scrape(port), "edgehub_queue_length", endpoint="iothub") == 0, 20,
             what="the upstream queue to empty")
    text = scrape(port)
    promtool(text)
    assert value(text, "berth_hub_upstream_up") == 1
    assert value(text, "berth_hub_upstream_connected", id=ident) == 1
    assert value(text, "berth_hub_queue_oldest_age_seconds", endpoint="iothub") == 0
    assert value(text, "edgehub_messages_sent_total", to="$upstream",
                 **{"from": ident, "from_route_output": "data"}) == 3
    assert value(text, "berth_hub_upstream_acknowledged_total") == 3


def test_scrapes_leave_the_daemon_memory_as_it_was(daemons, image):
    names = [unique("m%d" % i) for i in range(3)]
    d, port = metrics_daemon(daemons, image, {n: module(image, SLEEP) for n in names})
    for n in names:
        d.wait_status(n)
    for _ in range(20):
        scrape(port)
    time.sleep(3)  # the daemon gives back what a burst of work used
    before = rss_kb(d.proc.pid)
    for _ in range(300):
        scrape(port)
    time.sleep(3)
    after = rss_kb(d.proc.pid)
    print("daemon RSS %d kB before 300 scrapes, %d kB after" % (before, after))
    assert after <= before + 64, (before, after)


def raw_request(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed before all of it was sent (431)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_bad_requests_are_refused_and_bounded(daemons, image):
    d, port = metrics_daemon(daemons, image, {})
    assert raw_request(port, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw_request(port, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw_request(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n"
    assert raw_request(port, big).startswith(b"HTTP/1.1 431")
    # Scrapers that never finish their request hold their slot until it times
    # out; a scraper beyond the slots is turned away meanwhile.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        for s in idle:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(0.3)
        # Turned away at once, before it sends anything.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.recv(65536).startswith(b"HTTP/1.1 503")
    finally:
        for s in idle:
            s.close()
    # The positive control: a plain scrape is served, HEAD too.
    wait_for(lambda: raw_request(port, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(
        b"HTTP/1.1 200"), 15, what="a scrape after the idle ones left")
    head = raw_request(port, b"HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")


def test_metrics_are_off_unless_configured(daemons, image):
    d = daemons(manifest({})).start()
    fds = os.listdir("/proc/%d/fd" % d.proc.pid)
    inodes = {os.readlink("/proc/%d/fd/%s" % (d.proc.pid, f)) for f in fds}
    with open("/proc/net/tcp") as f:
        listening = [l.split() for l in f.readlines()[1:] if l.split()[3] == "0A"]
    ours = [l for l in listening if "socket:[%s]" % l[9] in inodes]
    assert ours == []
    assert "metrics on" not in d.log_text()
    # With the key, the daemon listens (the positive control).
    d.terminate()
    port = free_port()
    d2 = daemons(manifest({}), metrics_listen="127.0.0.1:%d" % port).start()
    assert "berth_hub_up" in scrape(port)
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5)
        raise AssertionError("/ answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    assert d2.proc.poll() is None
