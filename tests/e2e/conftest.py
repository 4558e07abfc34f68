"""Shared fixtures: the berth binary, a real registry on loopback, test images.

Everything a test starts, it stops. Nothing leaves the machine: the registry
listens on 127.0.0.1 on a free port with its storage in a temporary directory.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import images  # noqa: E402
from helpers import wait_for  # noqa: E402 - also for the tests that import it from here
from iothub import iothub  # noqa: E402,F401  the IoT Hub stand-in fixture
from registry_fixtures import Front  # noqa: E402

REPO_TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BERTH = os.environ.get("BERTH_BIN", os.path.join(REPO_TOP, "build", "berth"))


def free_port(addr="127.0.0.1"):
    """A TCP port nothing listens on at addr now."""
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


class Registry:
    """A docker-registry (distribution) process on 127.0.0.1:<port>."""

    def __init__(self, workdir, extra_config=""):
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.dir = workdir
        os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
        cfg = os.path.join(workdir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\n"
                    "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                    "http:\n  addr: 127.0.0.1:%d\n%s"
                    % (os.path.join(workdir, "data"), self.port, extra_config))
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=1)
                return True
            except urllib.error.HTTPError:
                return True  # 401 from an auth-enabled registry still means it is up
            except OSError:
                return False
        wait_for(up, 20, what="docker-registry on " + self.host)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def berth_bin():
    assert os.path.exists(BERTH), "build berth first (make): %s" % BERTH
    return BERTH


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    yield r
    r.stop()


@pytest.fixture
def front(registry):
    """A proxy in front of the session's registry that injects faults."""
    f = Front(registry.host)
    yield f
    f.stop()


@pytest.fixture(scope="session")
def busybox_image(registry, tmp_path_factory):
    """127.0.0.1:<port>/busybox:1 — one layer of busybox-static."""
    tmp = tmp_path_factory.mktemp("img-busybox")
    digest = images.push_image(tmp, registry.host, "busybox", "1",
                               [images.Layer(images.busybox_layer())])
    return {"ref": "%s/busybox:1" % registry.host, "digest": digest}


class Berth:
    """Runs the berth binary with its own state and runtime directories."""

    def __init__(self, binary, root, run):
        self.binary, self.root, self.run_dir = binary, root, run

    def cmd(self, *args):
        return [self.binary, "--root", self.root, "--run", self.run_dir] + [str(a) for a in args]

    def __call__(self, *args, check=True, timeout=120, input=None, env=None):
        p = subprocess.run(self.cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, input=input, env=env)
        if check and p.returncode != 0:
            raise AssertionError("berth %s failed (%d):\nstdout: %s\nstderr: %s" % (
                " ".join(map(str, args)), p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p


@pytest.fixture
def berth(berth_bin, tmp_path):
    root = tmp_path / "root"
    run = tmp_path / "run"
    root.mkdir()
    run.mkdir()
    yield Berth(berth_bin, str(root), str(run))
    # Leave nothing mounted behind even when a test failed half-way.
    subprocess.run(["sh", "-c", "grep -o ' %s[^ ]*' /proc/self/mounts | sort -r | "
                    "xargs -r -n1 umount -l" % tmp_path], check=False)
