"""A fleet of berth devices on one machine, managed from one IoT Hub stand-in:
each device is a daemon in a network namespace of its own (a veth pair on a
test bridge, addresses in 10.231.0.0/24), with its own state, store and
device key. The stand-in and a relay to the test registry listen on the
bridge's address. Used by tests/e2e/test_cloud_fleet.py and bench/fleet.py.

Module names carry the device's number: the devices share this machine's
cgroup tree, where an instance's cgroup is berth/<module> (on real devices
each has its own)."""
import os
import shutil
import socket
import subprocess
import threading
import time

from daemonlib import Daemon, manifest, module
from iothub import IotHubStandin, new_key

NET = "10.231.0"
HOST_ADDR = NET + ".1"
BRIDGE = "bfleet0"
SLEEP = ["/bin/sh", "-c", "exec sleep 100000"]


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)


class Relay:
    """A TCP relay: listen_host:listen_port (0: any free port) to
    target_host:target_port, which can be cut (every connection closed, new
    ones refused) and mended: a device's link to IoT Hub that goes down while
    the cloud stays reachable for the operator."""

    def __init__(self, listen_host, listen_port, target_host, target_port):
        self.target = (target_host, target_port)
        self.up = True
        self.lock = threading.Lock()
        self.conns = []
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((listen_host, listen_port))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            try:
                s = socket.create_connection(self.target, 5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, s]
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.up = False
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []

    def mend(self):
        self.up = True

    def close(self):
        self.cut()
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.srv.close()


class Berth:
    def __init__(self, binary, root, run):
        self.binary, self.root, self.run_dir = binary, root, run

    def cmd(self, *args):
        return [self.binary, "--root", self.root, "--run", self.run_dir] + [str(a) for a in args]

    def __call__(self, *args, check=True, timeout=120):
        p = subprocess.run(self.cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("berth %s failed: %s" % (" ".join(map(str, args)),
                                                          p.stderr.decode(errors="replace")))
        return p


class NsDaemon(Daemon):
    """A daemon started inside a network namespace (the rest of the host's
    namespaces, so its instances get their cgroups as on any device)."""

    def __init__(self, netns, *args, **kw):
        super().__init__(*args, **kw)
        self.netns = netns
        inner = self.berth
        outer = self

        class InNs(Berth):
            def cmd(self, *a):
                if a and a[0] == "daemon":
                    # nsenter, not `ip netns exec`, which mounts a sysfs of
                    # its own (without the cgroup hierarchies) for the command.
                    return ["nsenter", "--net=/run/netns/" + outer.netns] + inner.cmd(*a)
                return inner.cmd(*a)
        self.berth = InNs(inner.binary, inner.root, inner.run_dir)


class Device:
    def __init__(self, fleet, i):
        self.i = i
        self.id = "fleet-%02d" % i
        self.netns = "bfleet-%d" % i
        self.host_if = "bfh%d" % i
        self.addr = "%s.%d" % (NET, 10 + i)
        self.key = new_key()
        self.dir = os.path.join(fleet.tmp, self.id)
        root, run = os.path.join(self.dir, "root"), os.path.join(self.dir, "run")
        for p in (root, run):
            os.makedirs(p, exist_ok=True)
        hub = fleet.iothub
        self.daemon = NsDaemon(
            self.netns, Berth(fleet.berth_bin, root, run), self.dir, hub=True,
            device_id=self.id, device_key=self.key, iothub_hostname=hub.hostname,
            registries={fleet.registry_host: {"insecure": True}},
            upstream={"url": hub.mqtts_url, "ca_file": hub.ca_file, "rest_url": hub.rest_url})

    def module_name(self, base):
        return "%s-%d" % (base, self.i)


class Fleet:
    def __init__(self, tmp, berth_bin, n, registry_port, image_path):
        """image_path: "busybox:1" in the registry on 127.0.0.1:registry_port."""
        self.tmp = str(tmp)
        self.berth_bin = berth_bin
        self.n = n
        self.registry_port = registry_port
        self.registry_host = "%s:%d" % (HOST_ADDR, registry_port)
        self.image = "%s/%s" % (self.registry_host, image_path)
        self.relay = None
        self.iothub = None
        self.devices = []

    # -- the network ----------------------------------------------------------
    def _net_down(self):
        for i in range(1, self.n + 1):
            ip("netns", "del", "bfleet-%d" % i, check=False)
            ip("link", "del", "bfh%d" % i, check=False)
        ip("link", "del", BRIDGE, check=False)

    def _net_up(self):
        self._net_down()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", HOST_ADDR + "/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for i in range(1, self.n + 1):
            ns, h, dv = "bfleet-%d" % i, "bfh%d" % i, "bfd%d" % i
            ip("netns", "add", ns)
            ip("link", "add", h, "type", "veth", "peer", "name", dv)
            ip("link", "set", dv, "netns", ns)
            ip("link", "set", h, "master", BRIDGE)
            ip("link", "set", h, "up")
            ip("-n", ns, "addr", "add", "%s.%d/24" % (NET, 10 + i), "dev", dv)
            ip("-n", ns, "link", "set", dv, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", HOST_ADDR)

    def start(self):
        self._net_up()
        # The registry on loopback, reachable from the namespaces.
        self.relay = Relay(HOST_ADDR, self.registry_port, "127.0.0.1", self.registry_port)
        self.iothub = IotHubStandin(os.path.join(self.tmp, "iothub"), host=HOST_ADDR,
                                    san=["IP:" + HOST_ADDR]).start()
        for i in range(1, self.n + 1):
            dev = Device(self, i)
            self.iothub.create_device(dev.id, edge=True, primary_key=dev.key,
                                      secondary_key=dev.key)
            self.devices.append(dev)
        for dev in self.devices:
            dev.daemon.start(wait=False)
        for dev in self.devices:
            deadline = time.time() + 30
            sock = os.path.join(dev.daemon.berth.run_dir, "berthd.sock")
            while not dev.daemon._answers(sock):
                if time.time() > deadline:
                    raise AssertionError("daemon of %s did not start:\n%s" % (
                        dev.id, dev.daemon.log_text()))
                time.sleep(0.1)
        return self

    def link(self, dev, up):
        ip("link", "set", dev.host_if, "up" if up else "down")

    # -- deployments ----------------------------------------------------------
    def deployment(self, dev, modules):
        """modules: {base name: env} -> the device's manifest."""
        return manifest({dev.module_name(b): module(self.image, SLEEP, env=env)
                         for b, env in modules.items()},
                        routes={"up": "FROM /messages/* INTO $upstream"})

    def deploy(self, modules, devices=None):
        """Sets the deployment on each device; returns {device id: desired version}."""
        versions = {}
        for dev in devices or self.devices:
            self.iothub.apply_configuration(dev.id, self.deployment(dev, modules))
            versions[dev.id] = self.iothub.get_twin(
                dev.id, "$edgeAgent")["properties"]["desired"]["$version"]
        return versions

    def converged(self, dev, version, modules):
        r = self.iothub.get_twin(dev.id, "$edgeAgent")["properties"]["reported"]
        if r.get("lastDesiredVersion") != version or \
                r.get("lastDesiredStatus", {}).get("code") != 200:
            return False
        got = r.get("modules", {})
        want = {dev.module_name(b) for b in modules}
        return set(got) == want and all(got[m].get("runtimeStatus") == "running" for m in want)

    def wait_converged(self, versions, modules, devices=None, timeout=120):
        """Seconds until every device reports the version applied and its
        modules running (as IoT Hub sees it)."""
        start = time.time()
        left = list(devices or self.devices)
        while left:
            left = [d for d in left if not self.converged(d, versions[d.id], modules)]
            if not left:
                break
            if time.time() - start > timeout:
                raise AssertionError("not converged after %d s: %s\n%s" % (
                    timeout, [d.id for d in left], left[0].daemon.log_text()[-4000:]))
            time.sleep(0.2)
        return time.time() - start

    # -- the end --------------------------------------------------------------
    def close(self):
        for dev in self.devices:
            self.link(dev, True)
        if self.iothub and self.iothub.running:
            try:
                versions = self.deploy({})
                self.wait_converged(versions, {}, timeout=60)
            except Exception:
                pass
        for dev in self.devices:
            d = dev.daemon
            try:
                if d.proc is not None and d.proc.poll() is None and any(
                        m for m in d.modules()):
                    d.terminate()
                    d.set_options(deployments="local")
                    d.start()
                    d.deploy(manifest({}))
                d.terminate()
            except Exception:
                pass
            finally:
                d.kill()
        if self.iothub:
            self.iothub.stop()
        if self.relay:
            self.relay.close()
        self._net_down()


def registry_port(registry_host):
    return int(registry_host.rsplit(":", 1)[1])


def have_tools():
    return shutil.which("ip") and os.geteuid() == 0
