"""What the end-to-end tests share below their fixtures: waiting for a
condition, unique names, the test device's key and module keys as IoT Hub
derives them, an instance's cgroups, processes and mounts seen from the
host, subnets of a test's own, pushing an image to a test registry, and
running make on the tree. conftest.py, daemonlib.py,
hubkit.py and instance_helpers.py build on these."""
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

import images

DEVICE_KEY = base64.b64encode(bytes(range(32))).decode()
IOTHUB_HOSTNAME = "myhub.example.net"
CGROUP_ROOT = "/sys/fs/cgroup"
REPO_TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cgroup_layout():
    """"v2" (cgroup2 at /sys/fs/cgroup), "hybrid" (v1 controllers and a
    cgroup2 beside them) or "v1", from this host's mounts."""
    v1 = v2 = v2_root = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, fstype = fields[4], fields[fields.index("-") + 1]
            if not point.startswith(CGROUP_ROOT):
                continue
            v2 |= fstype == "cgroup2"
            v2_root |= fstype == "cgroup2" and point == CGROUP_ROOT
            v1 |= fstype == "cgroup"
    return "v2" if v2_root else "hybrid" if v1 and v2 else "v1"


# Tests that read the v1 controller hierarchies (pids/, memory/, cpu/).
needs_v1_controllers = pytest.mark.skipif(
    cgroup_layout() == "v2",
    reason="reads the v1 controller hierarchies (pids/, memory/); this host has cgroup2 alone")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """pred()'s first true value, asked every interval seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError("timed out waiting for " + what)


LOG_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", re.M)


def unstamped(text):
    """An instance's log as its module wrote it: the shim's arrival stamp
    ("2024-05-01T12:00:00.123456789Z ") taken off every line."""
    return LOG_STAMP.sub("", text)


def unique(prefix):
    """Module and instance names are cgroup names on a machine that runs
    other suites at the same time."""
    return "%s-%s" % (prefix, os.urandom(4).hex())


def ip_json(*args):
    return json.loads(subprocess.run(["ip", "-j"] + list(args), check=True,
                                     stdout=subprocess.PIPE).stdout or b"[]")


def free_subnets(count):
    """10.x.y.0/24 subnets no route of the host overlaps (networks of a
    test's own: nothing else on the machine is touched)."""
    taken = [ipaddress.ip_network(r["dst"]) for r in ip_json("-4", "route", "show", "table", "all")
             if r.get("dst") not in (None, "default")
             and re.match(r"^[0-9.]+(/\d+)?$", r["dst"])]
    found = []
    while len(found) < count:
        net = ipaddress.ip_network("10.%d.%d.0/24" % (random.randint(100, 250),
                                                      random.randint(0, 255)))
        if not any(net.overlaps(t) for t in taken + found):
            found.append(net)
    return found


def module_key(module, generation_id, device_key=DEVICE_KEY):
    """base64(HMAC-SHA256(base64dec(device_key), module "\\n" generation_id))"""
    mac = hmac.new(base64.b64decode(device_key), (module + "\n" + generation_id).encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def instance_cgroups(name):
    """The instance's cgroup directories that exist, in every hierarchy."""
    found = [os.path.join(CGROUP_ROOT, h, "berth", name) for h in os.listdir(CGROUP_ROOT)]
    found.append(os.path.join(CGROUP_ROOT, "berth", name))
    return sorted(p for p in found if os.path.isdir(p))


def cgroup_pids(name):
    """Host pids whose cgroup is berth/<name> in any hierarchy."""
    pids = []
    rx = re.compile(r"/berth/%s$" % re.escape(name), re.M)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cgroup" % d) as f:
                if rx.search(f.read()):
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def kill_module(name):
    """SIGKILL to every process of the instance, as a crash would end it."""
    pids = cgroup_pids(name)
    assert pids, "no process in berth/%s" % name
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def recv_all(sock):
    """Everything the peer sends until it closes the connection."""
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def mounts_mentioning(text, pid="self"):
    """The mounts naming text in pid's mount namespace (the caller's, or an
    instance's when pid is one of its processes)."""
    with open("/proc/%s/mountinfo" % pid) as f:
        return [line for line in f if text in line]


def push(tmp_path, registry, repo, layers, tag="1", **kw):
    """Pushes an image made of layers to registry/repo:tag; its digest."""
    return images.push_image(tmp_path, registry.host, repo, tag, layers, **kw)


def make(*args, cwd=REPO_TOP, env=None, timeout=300):
    """`make -C cwd ARGS` of its own, not a sub-make of the `make check`
    running the tests; stdout and stderr apart."""
    env = {k: v for k, v in (env or os.environ).items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", "-C", cwd, "--no-print-directory"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=timeout)
