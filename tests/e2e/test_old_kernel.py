"""berth on a kernel older than 5.2: old_kernel.c makes every system call
added since (the new mount API, clone3 into a cgroup, openat2, close_range,
pidfds, ...) fail with ENOSYS, as such a kernel would, so each fallback path
runs; the isolation must be the same."""
import os
import subprocess

import pytest

from conftest import wait_for
from helpers import needs_v1_controllers, unstamped
from instance_helpers import (err, instance_cgroups, layer_dirs_of, mounts_mentioning,  # noqa: F401
                              out, probe_bin, runner, shim_state, spec_file, test_images,
                              unique)

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "old_kernel.c")


@pytest.fixture(scope="module")
def old_kernel(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("old-kernel") / "old_kernel")
    subprocess.run(["gcc", "-O2", "-o", dest, SRC, "-lseccomp"], check=True)
    return dest


def on_old_kernel(old_kernel, berth, *args):
    return subprocess.run([old_kernel] + berth.cmd(*args), input=b"", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


@needs_v1_controllers
def test_run_keeps_its_isolation_without_the_new_system_calls(runner, test_images, old_kernel,
                                                               tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    name = unique("old")
    p = on_old_kernel(old_kernel, runner, "run", "--rm", "--name", name, "--read-only",
                      "-v", "%s:/vol:ro" % vol, "--pids-limit", "30",
                      "--device", "/dev/loop-control:/dev/lc:r", test_images.refs["base"],
                      "sh", "-c",
                      "touch /x /vol/x 2>&1; probe fds; cat /sys/fs/cgroup/pids/pids.max; "
                      "wc -c < /proc/keys; chmod 600 /dev/lc 2>&1; "
                      "stat -c %t:%T /dev/null; grep -c ' /vol ro,' /proc/self/mountinfo; "
                      "exit 7")
    assert p.returncode == 7, err(p)
    lines = out(p).splitlines()
    # Binds by path, remounted read-only and checked (no open_tree or
    # mount_setattr), and the root read-only.
    assert lines[:2] == ["touch: /x: Read-only file system",
                         "touch: /vol/x: Read-only file system"]
    # Descriptors closed one by one (no close_range).
    assert [l.split()[1] for l in lines[2:5]] == ["0", "1", "2"]
    # In its cgroup without clone3: the parent moved it.
    assert lines[5] == "30"
    assert lines[6] == "0"
    assert lines[7] == "chmod: /dev/lc: Read-only file system"
    assert lines[8:] == ["1:3", "1"]
    # Its cgroup (which held it: pids.max above) is gone. Its mounts were in
    # its own mount namespace (the /vol line above) and went with it.
    assert instance_cgroups(name) == []
    assert os.listdir(vol) == []


def test_detached_instance_starts_stops_and_goes_without_pidfds(runner, test_images, old_kernel,
                                                                 tmp_path):
    name = unique("oldshim")
    spec = spec_file(str(tmp_path / "spec.json"), name=name,
                     layer_dirs=layer_dirs_of(runner, test_images.refs["base"]),
                     args=["/bin/sh", "-c", "trap 'echo term; exit 3' TERM; echo up; "
                           "while true; do sleep 0.05; done"], env=["PATH=/bin"])
    log = os.path.join(runner.root, "instances", name, "log")
    try:
        p = on_old_kernel(old_kernel, runner, "shim", "start", spec)
        assert p.returncode == 0, err(p)
        wait_for(lambda: os.path.exists(log) and "up" in open(log).read(), 15, what="output")
        p = on_old_kernel(old_kernel, runner, "shim", "stop", "--grace", "5", name)
        assert p.returncode == 0, err(p)
        st = shim_state(runner, name)
        assert (st["status"], st["alive"], st["exit_code"]) == ("exited", "0", "3")
        with open(log) as f:
            assert unstamped(f.read()) == "up\nterm\n"
        p = on_old_kernel(old_kernel, runner, "shim", "rm", name)
        assert p.returncode == 0, err(p)
    finally:
        runner("shim", "stop", "--grace", "0", name, check=False)
        runner("shim", "rm", name, check=False)
    assert instance_cgroups(name) == []
    assert not os.path.exists(os.path.join(runner.root, "instances", name))


def test_user_namespace_says_which_kernel_it_needs(runner, test_images, old_kernel):
    p = on_old_kernel(old_kernel, runner, "run", "--rm", "--userns", test_images.refs["base"],
                      "true")
    assert p.returncode == 125
    assert "user namespace" in err(p) and "Linux 5.2+" in err(p)
