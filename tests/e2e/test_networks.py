"""Module networks: bridge networks made by CNI's own plugins (bridge,
host-local, portmap, firewall), module names resolved on them, published
ports, the hub and the gateway address from a bridge module, and teardown
that leaves no interface, address, route or firewall rule behind.

Every network has a name and a subnet of this run's own (10.x.y.0/24 not
overlapping anything the host routes), so nothing else on the machine is
touched."""
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import urllib.request

import pytest

import images
from conftest import BERTH, free_port
from daemon_fixtures import daemons, image  # noqa: F401
from daemonlib import manifest, module
from helpers import free_subnets, ip_json, kill_module, unique, wait_for

CNI_DIR = "/usr/lib/cni"
IP_FREEBIND = 15
SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]

# What the CNI plugins create on first use and share between every CNI
# user of the host (podman too): chains and the jumps to them, holding no
# rule of any module. They stay, as with every CNI runtime; every rule a
# module or a network adds is checked to go.
PLUMBING = {
    ("filter", ":CNI-ADMIN -"),
    ("filter", ":CNI-FORWARD -"),
    ("filter", ":CNI-ISOLATION-STAGE-1 -"),
    ("filter", ":CNI-ISOLATION-STAGE-2 -"),
    ("filter", '-A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: '
               'same-bridge)" -j CNI-ISOLATION-STAGE-1'),
    ("filter", '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD'),
    ("filter", '-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" '
               '-j CNI-ADMIN'),
    ("filter", '-A CNI-ISOLATION-STAGE-1 -m comment --comment "CNI firewall plugin rules '
               '(ingressPolicy: same-bridge)" -j RETURN'),
    ("filter", '-A CNI-ISOLATION-STAGE-2 -m comment --comment "CNI firewall plugin rules '
               '(ingressPolicy: same-bridge)" -j RETURN'),
    ("nat", ":CNI-HOSTPORT-DNAT -"),
    ("nat", ":CNI-HOSTPORT-MASQ -"),
    ("nat", ":CNI-HOSTPORT-SETMARK -"),
    ("nat", "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
    ("nat", "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
    ("nat", '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" '
            '-j CNI-HOSTPORT-MASQ'),
    ("nat", "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE"),
    ("nat", '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" '
            '-j MARK --set-xmark 0x2000/0x2000'),
}
BUILTIN = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}


def firewall():
    """The rules of iptables-save and ip6tables-save, without the tables'
    built-in chains, counters and the plugins' shared plumbing."""
    rules = set()
    for cmd in ("iptables-save", "ip6tables-save"):
        table = None
        out = subprocess.run([cmd], check=True, stdout=subprocess.PIPE).stdout.decode()
        for line in out.splitlines():
            if not line or line.startswith("#") or line == "COMMIT":
                continue
            if line.startswith("*"):
                table = line[1:]
                continue
            if line.startswith(":"):
                name, policy = line[1:].split()[:2]
                if name in BUILTIN and policy == "ACCEPT":
                    continue
                line = ":%s %s" % (name, policy)
            if (table, line) not in PLUMBING:
                rules.add((cmd, table, line))
    return rules


def nft_ruleset():
    p = subprocess.run(["nft", "list", "ruleset"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return p.stdout.decode()


def net_state():
    """Interfaces, addresses and routes (both families, every table) and
    firewall rules of the host."""
    links = {l["ifname"] for l in ip_json("link")}
    addrs = {(a["ifname"], i["local"], i["prefixlen"]) for a in ip_json("addr")
             for i in a.get("addr_info", [])}
    routes = set()
    for fam in ("-4", "-6"):
        for r in ip_json(fam, "route", "show", "table", "all"):
            routes.add((r.get("type"), r.get("dst"), r.get("dev"), r.get("table"),
                        r.get("prefsrc")))
    return {"links": links, "addrs": addrs, "routes": routes, "firewall": firewall()}


def assert_same_state(before, after, names):
    """Nothing of the networks is left; names (bridges, veths, subnets)
    appear in no nftables rule either."""
    for k in before:
        assert after[k] == before[k], "%s left behind: %s; gone: %s" % (
            k, sorted(after[k] - before[k]), sorted(before[k] - after[k]))
    nft = nft_ruleset()
    for n in names:
        assert n not in nft, "nftables still mentions %s:\n%s" % (n, nft)


def default_bridge(network):
    return "berth-" + hashlib.sha256(network.encode()).hexdigest()[:8]


class Nets:
    """Two networks of this test's own: a (the default, bridge named by the
    config) and b (bridge named by berth)."""

    def __init__(self):
        sa, sb = free_subnets(2)
        self.a, self.b = unique("neta"), unique("netb")
        self.subnet = {self.a: sa, self.b: sb}
        self.bridge = {self.a: "bt-" + os.urandom(4).hex(), self.b: default_bridge(self.b)}

    def config(self):
        return {"default_network": self.a,
                "networks": {self.a: {"subnet": str(self.subnet[self.a]),
                                      "bridge": self.bridge[self.a]},
                             self.b: {"subnet": str(self.subnet[self.b])}}}

    def gateway(self, net):
        return str(next(self.subnet[net].hosts()))

    def tokens(self):
        """Strings that name these networks in listings."""
        return list(self.bridge.values()) + [str(s.network_address)[:-1] for s in
                                             self.subnet.values()]


@pytest.fixture
def nets():
    return Nets()


@pytest.fixture
def netd(daemons, nets):
    """A daemon with the two networks, the hub on; the default network a."""
    return daemons(hub=True, **nets.config())


def httpd(text, port=80):
    return ["/bin/sh", "-c", "mkdir -p /www && echo %s > /www/index.html && "
            "exec httpd -f -p %d -h /www" % (text, port)]


def get(host, tag, port=80):
    """Shell: one HTTP GET with busybox nc (its wget crashes when statically
    linked), the body's last line printed after `tag: `."""
    return ("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s %d | tail -n 1 | sed 's/^/%s: /'"
            % (host, port, tag))


def publish(container, host):
    return {"ExposedPorts": {"%d/tcp" % container: {}},
            "HostConfig": {"PortBindings": {"%d/tcp" % container: [{"HostPort": str(host)}]}}}


def on(network, create=None):
    c = dict(create or {})
    hc = dict(c.get("HostConfig", {}))
    hc["NetworkMode"] = network
    c["HostConfig"] = hc
    return c


def records(d, name):
    """The module's network records: address and host-side veth of each."""
    adir = os.path.join(d.berth.root, "networks", "attachments")
    found = []
    for f in sorted(os.listdir(adir)):
        with open(os.path.join(adir, f)) as fh:
            r = json.load(fh)
        if r["module"] == name and "result" in r:
            res = json.loads(r["result"])
            addr = next(i["address"].split("/")[0] for i in res["ips"])
            veth = next(i["name"] for i in res["interfaces"]
                        if not i.get("sandbox") and i["name"] != r["bridge"])
            found.append({"address": addr, "veth": veth, "netns": r["netns"],
                          "id": r["container_id"]})
    return found


def record(d, name):
    """The network record of the module's instance, once CNI ADD is done."""
    return wait_for(lambda: records(d, name), 20, what="network record of " + name)[0]


def http_get(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def last_value(text, key):
    found = re.findall(r"^%s: (\S+)$" % key, text, re.M)
    return found[-1] if found else None


def test_modules_on_the_default_network_reach_each_other_by_name_and_a_published_port(
        netd, nets, image):
    web, client = unique("web"), unique("client")
    port = free_port()
    loop = ("echo ifaces: $(ls /sys/class/net); while true; do "
            "echo web-lines: $(grep -c '[[:space:]]%s$' /etc/hosts); %s; sleep 0.3; done"
            % (web, get(web, "got")))
    d = netd.start()
    # The client runs first: the name of the module started after it reaches
    # its /etc/hosts while it runs, and leaves it when that module goes.
    mods = {client: module(image, ["/bin/sh", "-c", loop])}
    d.deploy(manifest(mods))
    d.wait_log(client, "web-lines: 0")
    mods[web] = module(image, httpd("hello-from-web"), create=publish(80, port))
    d.deploy(manifest(mods))
    d.wait_status(web)
    d.wait_log(client, "got: hello-from-web")
    assert d.wait_log(client, r"ifaces: (.*)").group(1).split() == ["eth0", "lo"]
    w = record(d, web)
    assert ipaddress.ip_address(w["address"]) in nets.subnet[nets.a]
    with open(os.path.join(d.instance_dir(client), "hosts")) as f:
        hosts = f.read()
    assert re.search(r"^%s\s+%s$" % (re.escape(w["address"]), web), hosts, re.M), hosts
    # From the host, on the published port.
    assert wait_for(lambda: _get_or_none("http://127.0.0.1:%d/" % port), 10,
                    what="published port") == "hello-from-web\n"
    # The module's interface is on the bridge, the bridge has the gateway.
    assert ip_json("link", "show", w["veth"])[0]["master"] == nets.bridge[nets.a]
    addrs = [i["local"] for i in ip_json("addr", "show", nets.bridge[nets.a])[0]["addr_info"]
             if i["family"] == "inet"]
    assert addrs == [nets.gateway(nets.a)]
    del mods[web]
    d.deploy(manifest(mods))
    d.wait_gone(web)
    wait_for(lambda: last_value(d.module_log(client), "web-lines") == "0", 10,
             what="web's name gone from the client's /etc/hosts")


def _get_or_none(url):
    try:
        return http_get(url, timeout=1)
    except OSError:
        return None


def test_two_networks_do_not_see_each_other(netd, nets, image):
    web, peer, other = unique("web"), unique("peer"), unique("other")
    d = netd.start()
    d.deploy(manifest({web: module(image, httpd("hello-from-web"))}))
    d.wait_status(web)
    w = record(d, web)
    # On network b: a module that tries web by address and by name, and
    # reaches a module of its own network by name (the positive control).
    probe = ("while true; do %s; echo web-rc=$?; %s; %s; sleep 0.3; done"
             % (get(w["address"], "web-by-address"), get(web, "web-by-name"), get(peer, "peer")))
    d.deploy(manifest({web: module(image, httpd("hello-from-web")),
                       peer: module(image, httpd("hello-from-peer"), create=on(nets.b)),
                       other: module(image, ["/bin/sh", "-c", probe], create=on(nets.b))}))
    d.wait_status(other)
    d.wait_log(other, "peer: hello-from-peer")
    d.wait_log(other, "web-rc=")
    log = d.module_log(other)
    assert "web-by-address: hello" not in log and "web-by-name: hello" not in log, log
    o = record(d, other)
    assert ipaddress.ip_address(o["address"]) in nets.subnet[nets.b]
    with open(os.path.join(d.instance_dir(other), "hosts")) as f:
        hosts = f.read()
    assert peer in hosts and web not in hosts, hosts
    # Both bridges exist, each with its own gateway address.
    for n in (nets.a, nets.b):
        addrs = [i["local"] for i in ip_json("addr", "show", nets.bridge[n])[0]["addr_info"]
                 if i["family"] == "inet"]
        assert addrs == [nets.gateway(n)]


def test_name_servers_and_extra_hosts_reach_the_module(netd, nets, image):
    a, b = unique("dns"), unique("plain")
    show = ["/bin/sh", "-c", "cat /etc/resolv.conf /etc/hosts; echo end-of-files; exec sleep 1000"]
    d = netd.start()
    d.deploy(manifest({
        a: module(image, show, create={"HostConfig": {
            "Dns": ["10.0.0.53"], "DnsSearch": ["plant.local"], "DnsOptions": ["ndots:2"],
            "ExtraHosts": ["historian:10.1.2.3", "hostgw:host-gateway"]}}),
        b: module(image, show)}))
    log = d.wait_log(a, "end-of-files") and d.module_log(a)
    assert "nameserver 10.0.0.53\nsearch plant.local\noptions ndots:2\n" in log, log
    assert re.search(r"^10\.1\.2\.3\s+historian$", log, re.M), log
    assert re.search(r"^%s\s+hostgw$" % re.escape(nets.gateway(nets.a)), log, re.M), log
    # Without Dns: the host's name servers, none of them on its loopback.
    d.wait_log(b, "end-of-files")
    plain = d.module_log(b)
    assert "nameserver 10.0.0.53" not in plain
    assert not re.search(r"^nameserver 127\.", plain, re.M), plain
    assert "historian" not in plain


def test_a_bridge_module_reaches_the_hub_and_the_gateway_address(netd, nets, image, registry,
                                                                 tmp_path):
    sensor_bin = os.path.join(os.path.dirname(BERTH), "examples", "sensor")
    assert os.path.exists(sensor_bin), "build the example modules first (make examples)"
    with open(sensor_bin, "rb") as f:
        ref = "%s/net-sensor:1" % registry.host
        images.push_image(str(tmp_path), registry.host, "net-sensor", "1",
                          [images.Layer([images.file("bin/sensor", f.read(), mode=0o755)])],
                          config={"Entrypoint": ["/bin/sensor"]})
    # The gateway: a listener on the bridge's address, bound before the
    # bridge exists (IP_FREEBIND), as the hub's TLS gateway listens.
    gw = nets.gateway(nets.a)
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    srv.bind((gw, port))
    srv.listen(1)
    srv.settimeout(20)
    sensor, caller = unique("sensor"), unique("caller")
    d = netd.start()
    d.deploy(manifest({
        sensor: module(ref),
        caller: module(image, ["/bin/sh", "-c", "while true; do echo hello-gateway | "
                                                "nc -w 2 %s %d; sleep 0.5; done" % (gw, port)])},
        twins={sensor: {"interval_ms": 100}}))
    conn, peer = srv.accept()
    with conn:
        assert conn.recv(64) == b"hello-gateway\n"
    srv.close()
    assert ipaddress.ip_address(peer[0]) in nets.subnet[nets.a]
    # The sensor connects to the hub over /run/berth/hub.sock from its own
    # network namespace; its twin shows what it reported through it.
    assert record(d, sensor)["address"]

    last = []

    def reported():
        p = d.berth("twin", sensor, check=False)
        last[:] = [p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")]
        return p.returncode == 0 and json.loads(p.stdout)["reported"].get("sent", 0) >= 10
    try:
        wait_for(reported, 20, interval=0.3, what="the sensor's reported twin")
    except TimeoutError:
        raise AssertionError("twin: %s\nsensor: %s\ndaemon: %s" % (
            last, d.module_log(sensor), d.log_text()))


def mentions(state, text):
    """The firewall rules, routes and addresses that mention text (an
    address: 10.1.2.3 is not in 10.1.2.30)."""
    rx = re.compile(r"(?<![0-9.])%s(?![0-9])" % re.escape(text))
    return [r for k in ("firewall", "routes", "addrs") for r in state[k]
            if rx.search(" ".join(str(x) for x in r))]


def instance_state(d, name):
    with open(os.path.join(d.instance_dir(name), "state.json")) as f:
        return json.load(f)


def deploy_two_networks(d, nets, image, web, port, others):
    mods = {web: module(image, httpd("hello-from-web"), create=publish(80, port))}
    for name, net in others.items():
        mods[name] = module(image, SLEEP, create=on(net))
    d.deploy(manifest(mods))
    for name in mods:
        d.wait_status(name)


def test_a_removed_module_and_a_replaced_deployment_leave_nothing_behind(netd, nets, image):
    before = net_state()
    web, client, other, later = unique("web"), unique("client"), unique("other"), unique("later")
    port = free_port()
    d = netd.start()
    deploy_two_networks(d, nets, image, web, port, {client: nets.a, other: nets.b})
    w, c = record(d, web), record(d, client)
    mid = net_state()
    # The positive control: every listing shows the networks.
    assert {nets.bridge[nets.a], nets.bridge[nets.b], w["veth"], c["veth"]} <= mid["links"]
    assert mentions(mid, w["address"]) and mentions(mid, c["address"])
    assert [r for r in mid["firewall"] if "--dport %d" % port in r[2]], mid["firewall"]
    # A module removed: its interface, rules and namespace go; the others stay.
    d.deploy(manifest({web: module(image, httpd("hello-from-web"), create=publish(80, port)),
                       other: module(image, SLEEP, create=on(nets.b))}))
    d.wait_gone(client)
    after = net_state()
    assert c["veth"] not in after["links"] and not mentions(after, c["address"])
    assert not os.path.exists(c["netns"])
    assert w["veth"] in after["links"] and mentions(after, w["address"])
    # The deployment replaced by one with a module on network b only:
    # network a goes whole, with the published port.
    d.deploy(manifest({later: module(image, SLEEP, create=on(nets.b))}))
    d.wait_gone(web)
    d.wait_gone(other)
    d.wait_status(later)
    after = net_state()
    assert nets.bridge[nets.a] not in after["links"] and w["veth"] not in after["links"]
    assert not mentions(after, w["address"]) and not mentions(after, nets.tokens()[0])
    assert not [r for r in after["firewall"] if "--dport %d" % port in r[2]]
    assert _get_or_none("http://127.0.0.1:%d/" % port) is None
    assert nets.bridge[nets.b] in after["links"]
    # And nothing at all once no module is left.
    d.deploy(manifest({}))
    d.wait_gone(later)
    assert_same_state(before, net_state(), nets.tokens())


def test_a_stopped_daemon_leaves_nothing_behind(netd, nets, image):
    before = net_state()
    web, other = unique("web"), unique("other")
    d = netd.start()
    deploy_two_networks(d, nets, image, web, free_port(), {other: nets.b})
    w, o = record(d, web), record(d, other)
    assert {w["veth"], o["veth"]} <= net_state()["links"]
    d.terminate()
    assert_same_state(before, net_state(), nets.tokens() + [w["veth"], o["veth"]])
    assert os.listdir(os.path.join(d.berth.run_dir, "netns")) == []
    assert os.listdir(os.path.join(d.berth.root, "networks", "attachments")) == []


def test_a_removal_under_way_when_the_daemon_stops_leaves_nothing_behind(daemons, nets, image):
    """With stop_modules_on_exit false the modules keep running, and their
    networks; a module whose removal is under way is stopped first, its
    network with it."""
    before = net_state()
    gone, kept = unique("gone"), unique("kept")
    d = daemons(stop_modules_on_exit=False, **nets.config()).start()
    d.deploy(manifest({gone: module(image, SLEEP), kept: module(image, SLEEP)}))
    d.wait_status(gone)
    d.wait_status(kept)
    g, k = record(d, gone), record(d, kept)
    # sleep as the instance's first process ignores SIGTERM: the stop takes
    # its grace period, and the daemon is asked to stop meanwhile.
    d.deploy(manifest({kept: module(image, SLEEP)}))
    wait_for(lambda: "module %s: stopping" % gone in d.log_text(), 10, what="gone stopping")
    d.terminate()
    after = net_state()
    assert g["veth"] not in after["links"] and not mentions(after, g["address"])
    assert not os.path.exists(g["netns"])
    assert k["veth"] in after["links"] and mentions(after, k["address"])
    d.start()
    d.deploy(manifest({}))
    d.wait_gone(kept)
    d.terminate()
    assert_same_state(before, net_state(), nets.tokens() + [g["veth"], k["veth"]])


def test_a_killed_daemon_keeps_running_networks_and_tears_down_the_others_at_its_next_start(
        netd, nets, image):
    before = net_state()
    web, gone = unique("web"), unique("gone")
    port = free_port()
    d = netd.start()
    deploy_two_networks(d, nets, image, web, port, {gone: nets.a})
    w, g = record(d, web), record(d, gone)
    started = instance_state(d, web)["started_at"]
    d.kill()
    # The shims keep their modules running; one of them ends while no
    # daemon watches.
    kill_module(gone)
    wait_for(lambda: instance_state(d, gone)["status"] == "exited", 10, what="gone exited")
    d.start()
    # The running module keeps its instance, its address and its network.
    d.wait_status(web)
    assert instance_state(d, web)["started_at"] == started
    assert records(d, web) == [w]
    assert w["veth"] in net_state()["links"]
    assert wait_for(lambda: _get_or_none("http://127.0.0.1:%d/" % port), 10,
                    what="published port") == "hello-from-web\n"
    # The ended one's network is torn down; it starts again on a new one.
    wait_for(lambda: g["veth"] not in net_state()["links"], 10, what="old veth removed")
    assert not os.path.exists(g["netns"])
    d.wait_status(gone)
    again = record(d, gone)
    assert again["id"] != g["id"] and again["veth"] in net_state()["links"]
    log = d.log_text()
    assert "its instance is gone; tearing down its network" in log
    # CNI CHECK found the kept network as it was set up.
    assert "module %s: kept network %s, address %s" % (web, nets.a, w["address"]) in log, log
    assert "is not as it was set up" not in log
    d.terminate()
    assert_same_state(before, net_state(), nets.tokens() + [w["veth"], g["veth"]])


def test_a_host_port_published_by_two_modules_refuses_the_deployment(netd, image):
    a, b = unique("pa"), unique("pb")
    port, other = free_port(), free_port()
    d = netd.start()
    p = d.deploy(manifest({a: module(image, SLEEP, create=publish(80, port)),
                           b: module(image, SLEEP, create=publish(81, port))}), check=False)
    assert p.returncode == 1
    assert "modules %s and %s both publish host port %d/tcp" % (a, b, port) in p.stderr.decode()
    # Two host ports are fine (stopped modules: nothing needs to start).
    d.deploy(manifest({a: module(image, SLEEP, create=publish(80, port), status="stopped"),
                       b: module(image, SLEEP, create=publish(81, other), status="stopped")}))
    d.wait_status(a, "stopped")


def test_a_teardown_that_fails_is_tried_again_at_the_next_start(netd, nets, image, tmp_path):
    before = net_state()
    m = unique("m")
    d = netd.start()
    d.deploy(manifest({m: module(image, SLEEP)}))
    d.wait_status(m)
    r = record(d, m)
    d.kill()
    kill_module(m)
    wait_for(lambda: instance_state(d, m)["status"] == "exited", 10, what="m exited")
    # The plugins are not there when the daemon starts again: DEL fails, and
    # the record and the pinned namespace DEL needs stay.
    with open(d.config_path) as f:
        good = f.read()
    broken = json.loads(good)
    broken["cni_path"] = str(tmp_path / "no-plugins")
    os.mkdir(broken["cni_path"])
    with open(d.config_path, "w") as f:
        json.dump(broken, f)
    d.start()
    wait_for(lambda: "tried again at the next start" in d.log_text(), 20, what="a failed DEL")
    d.kill()
    assert r["veth"] in net_state()["links"]
    assert os.path.exists(os.path.join(d.berth.root, "networks", "attachments",
                                       r["id"] + ".json"))
    with open(d.config_path, "w") as f:
        f.write(good)
    d.start()
    wait_for(lambda: r["veth"] not in net_state()["links"], 20, what="the old veth removed")
    d.deploy(manifest({}))
    d.wait_gone(m)
    d.terminate()
    assert_same_state(before, net_state(), nets.tokens() + [r["veth"]])
    assert os.listdir(os.path.join(d.berth.root, "networks", "attachments")) == []
