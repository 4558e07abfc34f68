"""Detached instances under their shim (shim.h, driven through `berth shim`):
start, state.json, logs, signals, stop with grace, restarts, removal."""
import os
import signal
import subprocess
import time

from conftest import wait_for
from helpers import unstamped
from instance_helpers import (err, instance_cgroups, kill_quietly, layer_dirs_of, out,  # noqa: F401
                              probe_bin, processes_in_cgroups, pss_kb, rss_kb, runner,
                              shim_state, spec_file, test_images, unique, wait_gone)


class Detached:
    """Starts instances through `berth shim start` and removes them afterwards."""

    def __init__(self, berth, ref, tmp_path):
        self.berth, self.tmp = berth, tmp_path
        self.layers = layer_dirs_of(berth, ref)
        self.names = []

    def spec(self, name, script, **fields):
        fields.setdefault("env", ["PATH=/bin"])
        return spec_file(str(self.tmp / ("%s.json" % name)), name=name, layer_dirs=self.layers,
                         args=["/bin/sh", "-c", script], **fields)

    def start(self, script, check=True, **fields):
        name = fields.pop("name", None) or unique("shim")
        self.names.append(name)
        p = self.berth("shim", "start", self.spec(name, script, **fields), check=check)
        return name, (int(out(p)) if p.returncode == 0 else p)

    def state(self, name):
        return shim_state(self.berth, name)

    def log(self, name, which="log"):
        with open(os.path.join(self.berth.root, "instances", name, which)) as f:
            return unstamped(f.read())

    def wait_exited(self, name, timeout=10):
        wait_for(lambda: self.state(name)["status"] == "exited", timeout,
                 what="instance %s to exit" % name)

    def cleanup(self):
        for n in self.names:
            self.berth("shim", "stop", "--grace", "0", n, check=False)
            self.berth("shim", "rm", n, check=False)


import pytest  # noqa: E402


@pytest.fixture
def detached(runner, test_images, tmp_path):
    d = Detached(runner, test_images.refs["base"], tmp_path)
    yield d
    d.cleanup()
    for n in d.names:
        assert instance_cgroups(n) == [], n


def test_start_returns_once_the_module_runs(detached):
    name, shim = detached.start("echo started; exec sleep 30")
    st = detached.state(name)
    assert st["status"] == "running" and st["alive"] == "1"
    assert int(st["shim_pid"]) == shim
    pid = int(st["pid"])
    # The exec happened before start returned: pid 1 is already the module's
    # shell (or, a moment later, the sleep it execs), never berth.
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[0] in (b"sh", b"/bin/sh", b"sleep")
    assert pid in processes_in_cgroups(instance_cgroups(name))
    assert int(st["started_at"]) > 0
    # The shim is the module's parent (its starter cloned it with CLONE_PARENT).
    with open("/proc/%d/stat" % pid) as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == shim


def test_start_failure_carries_the_real_reason(detached, tmp_path):
    name = unique("noexec")
    detached.names.append(name)
    spec = spec_file(str(tmp_path / "s.json"), name=name, layer_dirs=detached.layers,
                     args=["/app"], env=[])
    p = detached.berth("shim", "start", spec, check=False)
    assert p.returncode == 1
    assert "exec /app: No such file or directory" in err(p)
    st = detached.state(name)
    assert st["status"] == "exited" and st["exit_code"] == "127"
    assert "exec /app" in st["error"]


def test_stop_sends_sigterm_and_records_the_exit(detached):
    name, _ = detached.start("trap 'echo stopping; exit 7' TERM; echo up; "
                             "while true; do sleep 0.05; done")
    wait_for(lambda: "up" in detached.log(name), 15, what="output")
    t0 = time.monotonic()
    detached.berth("shim", "stop", "--grace", "5", name)
    assert time.monotonic() - t0 < 4.5  # well before the grace period ends
    st = detached.state(name)
    assert st["status"] == "exited" and st["alive"] == "0"
    assert (st["exit_code"], st["exit_signal"], st["oom_killed"]) == ("7", "0", "0")
    assert int(st["finished_at"]) >= int(st["started_at"]) > 0
    assert detached.log(name) == "up\nstopping\n"


def test_stop_kills_the_whole_cgroup_after_the_grace_period(detached):
    name, _ = detached.start("trap '' TERM; sleep 60 & echo up; "
                             "while true; do sleep 0.05; done")
    wait_for(lambda: "up" in detached.log(name), 15, what="output")
    pids = processes_in_cgroups(instance_cgroups(name))
    assert len(pids) >= 2, pids  # the shell and its sleep, in the cgroup
    t0 = time.monotonic()
    detached.berth("shim", "stop", "--grace", "1", name)
    took = time.monotonic() - t0
    assert 0.9 < took < 8
    st = detached.state(name)
    assert (st["exit_code"], st["exit_signal"]) == ("137", "9")
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z"
    assert instance_cgroups(name) == []


def test_stopping_a_stopped_instance_is_not_an_error(detached):
    name, _ = detached.start("exit 0")
    detached.wait_exited(name)
    detached.berth("shim", "stop", name)


def test_signals_to_the_shim_are_forwarded(detached):
    name, shim = detached.start("trap 'echo usr1' USR1; trap 'echo hup' HUP; echo up; "
                                "while true; do sleep 0.05; done")
    wait_for(lambda: "up" in detached.log(name), 15, what="output")
    os.kill(shim, signal.SIGUSR1)
    wait_for(lambda: "usr1" in detached.log(name), 15, what="usr1")
    os.kill(shim, signal.SIGHUP)
    wait_for(lambda: "hup" in detached.log(name), 15, what="hup")


def test_shim_survives_the_death_of_its_parent(detached):
    """The shim is in a session of its own: killing the starter's whole
    process group leaves it and its instance running."""
    name = unique("orphan")
    detached.names.append(name)
    spec = detached.spec(name, "echo up; exec sleep 60")
    starter = subprocess.Popen(["sh", "-c", "%s && sleep 60" %
                                " ".join(detached.berth.cmd("shim", "start", spec))],
                               stdout=subprocess.PIPE, start_new_session=True)
    shim = int(starter.stdout.readline())
    os.killpg(starter.pid, signal.SIGKILL)
    starter.wait()
    time.sleep(0.2)
    st = detached.state(name)
    assert st["status"] == "running" and st["alive"] == "1"
    assert int(st["shim_pid"]) == shim
    with open("/proc/%d/stat" % shim) as f:
        ppid = int(f.read().split(") ")[1].split()[1])
    assert ppid != starter.pid
    assert os.path.exists("/proc/%s" % st["pid"])


def test_log_holds_stdout_and_stderr_in_arrival_order(detached):
    name, _ = detached.start("echo 1; echo 2 >&2; echo 3; echo 4 >&2")
    detached.wait_exited(name)
    assert detached.log(name) == "1\n2\n3\n4\n"


def test_log_rotates_at_the_size_limit(detached):
    name, _ = detached.start("i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
                             log_max_bytes=1000)
    detached.wait_exited(name)
    cur, old = detached.log(name), detached.log(name, "log.1")
    sizes = [os.path.getsize(os.path.join(detached.berth.root, "instances", name, f))
             for f in ("log", "log.1")]
    # Whole lines rotate: log.1 is as full as one more stamped line allows.
    assert 0 < sizes[0] <= 1000 and 1000 - 40 < sizes[1] <= 1000, sizes
    both = old + cur
    assert both.endswith("line-299\n")
    # The two files hold the most recent output, contiguous and in order.
    first = int(both.split("\n")[0].split("-")[1])
    assert both.split("\n")[:-1] == ["line-%d" % i for i in range(first, 300)]


def test_oom_kill_is_recorded_in_the_state(detached):
    name, _ = detached.start("dd if=/dev/zero of=/dev/null bs=128M count=1",
                             memory=32 << 20, memory_swap=32 << 20)
    detached.wait_exited(name)
    st = detached.state(name)
    assert st["oom_killed"] == "1" and st["exit_code"] == "137"
    assert "out-of-memory" in st["error"]


def test_a_restart_keeps_the_instance_writes_and_log(detached):
    name, _ = detached.start("echo first > /persist; echo run1")
    detached.wait_exited(name)
    _, _ = detached.start("cat /persist; echo run2", name=name)
    detached.wait_exited(name)
    assert detached.log(name) == "run1\nfirst\nrun2\n"


def test_remove_refuses_a_running_instance_then_removes_everything(detached):
    name, _ = detached.start("exec sleep 60")
    p = detached.berth("shim", "rm", name, check=False)
    assert p.returncode == 1 and "is running" in err(p)
    detached.berth("shim", "stop", "--grace", "0", name)
    detached.berth("shim", "rm", name)
    assert not os.path.exists(os.path.join(detached.berth.root, "instances", name))
    assert instance_cgroups(name) == []


def test_shim_killed_without_recording_reads_as_exited_255(detached):
    name, shim = detached.start("exec sleep 60")
    pid = int(detached.state(name)["pid"])
    os.kill(shim, signal.SIGKILL)
    wait_gone(shim)
    # The instance does not outlive its supervisor.
    wait_gone(pid)
    st = detached.state(name)
    assert st["status"] == "exited" and st["exit_code"] == "255"
    assert "died without recording" in st["error"]


def test_shim_stays_under_one_megabyte_resident(detached):
    name, shim = detached.start("exec sleep 60")
    rss, pss = rss_kb(shim), pss_kb(shim)
    print("shim RSS %d kB, PSS %d kB" % (rss, pss))
    assert rss <= 1024


def test_device_named_by_a_path_with_colons(detached, tmp_path):
    """Devices under /dev/serial/by-path have colons in their names."""
    byp = tmp_path / "by-path"
    byp.mkdir()
    link = byp / "pci-0000:00:14.0-usb-0:1:1.0-port0"
    os.symlink("/dev/loop-control", str(link))
    name, _ = detached.start("test -c /dev/ttyX && echo device; exec 3< /dev/ttyX && echo open",
                             devices=[{"path": str(link), "path_in": "/dev/ttyX",
                                       "permissions": "r"}])
    detached.wait_exited(name)
    assert detached.log(name) == "device\nopen\n"


def test_a_detached_instance_gets_stdio_of_its_own_and_no_other_descriptor(detached):
    """stdin reads as empty and is a pipe, not the host's /dev/null, whose
    inode a chmod through /proc/self/fd/0 would change; only 0, 1 and 2 are open."""
    before = os.stat("/dev/null")
    name, _ = detached.start("cat; echo eof; readlink /proc/self/fd/0; "
                             "chmod 666 /proc/self/fd/0; probe fds")
    detached.wait_exited(name)
    lines = detached.log(name).splitlines()
    assert lines[0] == "eof"
    assert lines[1].startswith("pipe:")
    assert [l.split()[1] for l in lines[2:]] == ["0", "1", "2"]
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_ctime_ns) == (before.st_mode, before.st_ctime_ns)
