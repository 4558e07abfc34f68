"""Fixtures and helpers for the instance tests (berth run, the shim, OCI bundles).

Images are pushed once per session to the session registry and pulled once
into a session state directory, so each test starts instances right away.
Every instance gets a unique name: other test suites run at the same time.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import images
from conftest import Berth
from helpers import instance_cgroups, mounts_mentioning, unique, wait_for  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_SRC = os.path.join(HERE, "isolation_probe.c")

# CAP_CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
# NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP
DEFAULT_CAPS = 0xa80425fb

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n")
GROUP = ("root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"
         "video:x:44:app\naudio:x:29:other,app\nstaff:x:50:other\n")


def build_probe(dest):
    subprocess.run(["gcc", "-static", "-O2", "-o", dest, PROBE_SRC], check=True)
    return dest


def processes_in_cgroups(paths):
    pids = set()
    for p in paths:
        for fn in ("cgroup.procs", "tasks"):
            try:
                with open(os.path.join(p, fn)) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return pids


def busybox_rootfs(path, extra_files=None):
    """A root directory with busybox-static, applet links and /etc files."""
    os.makedirs(os.path.join(path, "bin"), exist_ok=True)
    for d in ("etc", "tmp", "proc", "sys", "dev", "root", "home/app"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy(images.BUSYBOX, os.path.join(path, "bin", "busybox"))
    for a in images.APPLETS + ["ulimit", "grep", "ps"]:
        link = os.path.join(path, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write(GROUP)
    for rel, data in (extra_files or {}).items():
        p = os.path.join(path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, 0o755)
    return path


class Images:
    """Test images in the session registry, pulled into one state directory."""

    def __init__(self, registry, workdir, berth_bin, probe):
        self.registry = registry
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        self.run = os.path.join(workdir, "run")
        os.makedirs(self.root)
        os.makedirs(self.run)
        self.berth = Berth(berth_bin, self.root, self.run)
        # Host directories that hostile images point their /dev and /proc at.
        self.host_dev = os.path.join("/tmp", unique("berth-hostdev"))
        self.host_proc = os.path.join("/tmp", unique("berth-hostproc"))
        self.host_misc = os.path.join("/tmp", unique("berth-hostmisc"))
        for d in (self.host_dev, self.host_proc, self.host_misc):
            os.makedirs(d)
            with open(os.path.join(d, "marker"), "w") as f:
                f.write("host\n")
        with open(probe, "rb") as f:
            probe_bytes = f.read()
        base = images.Layer(images.busybox_layer())
        extras = images.Layer([images.file("etc/group", GROUP),
                               images.file("bin/probe", probe_bytes, mode=0o755),
                               images.dir("home"), images.dir("home/app", uid=1000, gid=1000),
                               images.dir("data"), images.file("data/image-file", "from the image\n")])
        self.refs = {}
        self.push("base", [base, extras])
        self.push("config", [base, extras], config={
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=image", "OVERRIDE=image"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo entry; id; pwd; env | sort"],
            "WorkingDir": "/home/app",
            "User": "app"})
        self.push("devlink", [images.Layer(images.busybox_layer(extra=[])),
                              images.Layer([images.symlink("dev", self.host_dev)])])
        self.push("proclink", [images.Layer(images.busybox_layer(extra=[])),
                               images.Layer([images.symlink("proc", self.host_proc)])])
        self.push("devdangling", [images.Layer(images.busybox_layer(extra=[])),
                                  images.Layer([images.symlink("dev", "/nonexistent/dev")])])
        # Every other mount destination and the working directory pointing at
        # host paths: absolute, climbing out with "..", and dangling.
        m = self.host_misc
        self.push("mountlinks", [images.Layer(images.busybox_layer(extra=[])), images.Layer([
            images.symlink("etc/resolv.conf", m + "/resolv.conf"),
            images.symlink("etc/hosts", "../../../../../../.." + m + "/hosts"),
            images.symlink("etc/hostname", m + "/missing/hostname"),
            images.symlink("vol", m + "/vol"),
            images.symlink("work", m)])])

    def push(self, name, layers, config=None):
        repo = "berth-run-%s" % name
        images.push_image(self.workdir, self.registry.host, repo, "1", layers, config=config)
        ref = "%s/%s:1" % (self.registry.host, repo)
        self.berth("pull", "--insecure", "--quiet", ref)
        self.refs[name] = ref

    def cleanup(self):
        for d in (self.host_dev, self.host_proc, self.host_misc):
            shutil.rmtree(d, ignore_errors=True)


# Each test module imports these fixtures, which registers them once per
# module: the images are built once and shared, and removed after the last.
_shared = {"users": 0}


@pytest.fixture(scope="session")
def probe_bin(tmp_path_factory):
    if "probe" not in _shared:
        _shared["probe"] = build_probe(str(tmp_path_factory.mktemp("probe") / "probe"))
    return _shared["probe"]


@pytest.fixture(scope="session")
def test_images(registry, tmp_path_factory, berth_bin, probe_bin):
    if "images" not in _shared:
        _shared["images"] = Images(registry, str(tmp_path_factory.mktemp("run-images")),
                                   berth_bin, probe_bin)
    _shared["users"] += 1
    yield _shared["images"]
    _shared["users"] -= 1
    if _shared["users"] == 0:
        _shared.pop("images").cleanup()


@pytest.fixture
def runner(test_images):
    """berth with the session's images; checks the test left no instance behind."""
    yield test_images.berth
    leftovers = [l for l in mounts_mentioning(test_images.root)]
    assert not leftovers, "mounts left behind: %s" % leftovers


def run(berth, *args, **kw):
    """berth run --rm with the given arguments; returns the CompletedProcess."""
    kw.setdefault("check", False)
    return berth("run", "--rm", *args, **kw)


def out(p):
    return p.stdout.decode(errors="replace")


def err(p):
    return p.stderr.decode(errors="replace")


def layer_dirs_of(berth, ref):
    """Layer directories of an image in the store, bottom first (berth inspect)."""
    return json.loads(out(berth("inspect", ref)))["layers"]


def spec_file(path, **fields):
    with open(path, "w") as f:
        json.dump(fields, f)
    return path


def shim_state(berth, name):
    p = berth("shim", "state", name)
    return dict(l.split("=", 1) for l in out(p).splitlines() if "=" in l)


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith(field + ":"):
                return int(l.split()[1])
    return None


def pss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for l in f:
            if l.startswith("Pss:"):
                return int(l.split()[1])
    return None


def wait_gone(pid, timeout=10):
    def gone():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ")[1].startswith("Z")
        except OSError:
            return True
    wait_for(gone, timeout, what="process %d to exit" % pid)
