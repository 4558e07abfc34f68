"""berth daemon under adverse conditions: the system time set while it runs,
slow module stops, hostile or idle clients, many restarts."""
import os
import subprocess
import time

import pytest

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import HUB_HOST, cgroup_pids, kill_module, manifest, module, module_key, \
    sas_verify, unique
from upstreamkit import hub_status

HERE = os.path.dirname(os.path.abspath(__file__))
SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]


class Clock:
    """Sets the wall clock of a daemon (and of the shims and hub it starts)
    through the clockshift.c preload library."""

    def __init__(self, lib, path):
        self.path = path
        self.shift(0)
        self.env = dict(os.environ, LD_PRELOAD=lib, CLOCKSHIFT_FILE=path)

    def shift(self, wall, boot=0):
        """Sets the wall clock `wall` seconds off; lets `boot` seconds pass."""
        with open(self.path, "w") as f:
            f.write("%d %d\n" % (wall, boot))


@pytest.fixture(scope="session")
def clockshift_lib(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("clockshift") / "clockshift.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", out,
                    os.path.join(HERE, "clockshift.c")], check=True)
    return out


@pytest.fixture
def clock(clockshift_lib, tmp_path):
    return Clock(clockshift_lib, str(tmp_path / "clockshift"))


@pytest.fixture(scope="session")
def slowstart_lib(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("slowstart") / "slowstart.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", out,
                    os.path.join(HERE, "slowstart.c")], check=True)
    return out




def test_backoff_is_not_stretched_when_the_clock_is_set_back(daemons, image, clock):
    a = unique("clkback")
    d = daemons(manifest({a: module(image, SLEEP)}), restart_backoff_unit_ms=4000)
    d.start(env=clock.env)
    d.wait_status(a)
    kill_module(a)
    d.wait_status(a, "backoff", timeout=10)
    clock.shift(-86400)
    d.wait_status(a, "running", restartCount=1, timeout=10)


def test_backoff_is_not_cut_short_when_the_clock_is_set_forward(daemons, image, clock):
    a = unique("clkfwd")
    d = daemons(manifest({a: module(image, SLEEP)}), restart_backoff_unit_ms=4000)
    d.start(env=clock.env)
    d.wait_status(a)
    killed = time.monotonic()
    kill_module(a)
    d.wait_status(a, "backoff", timeout=10)
    clock.shift(86400)
    d.wait_status(a, "running", restartCount=1, timeout=10)
    assert time.monotonic() - killed >= 3.5


def test_uptime_is_not_moved_by_setting_the_clock(daemons, image, clock):
    a = unique("clkup")
    d = daemons(manifest({a: module(image, SLEEP)}))
    d.start(env=clock.env)
    d.wait_status(a)
    clock.shift(2 * 86400)
    time.sleep(1)
    m = d.module(a)
    assert m["description"].startswith("Up ") and "second" in m["description"], m
    row = [l for l in d.berth("list").stdout.decode().splitlines() if l.startswith(a)][0]
    assert "Up " in row and "day" not in row, row


def test_restart_count_resets_after_ten_minutes_of_running(daemons, image, clock):
    a = unique("healthy")
    d = daemons(manifest({a: module(image, SLEEP)}), restart_backoff_unit_ms=200)
    d.start(env=clock.env)
    d.wait_status(a)
    kill_module(a)
    d.wait_status(a, "running", restartCount=1, timeout=10)
    clock.shift(0, 9 * 60)
    time.sleep(1.5)  # reconcile passes
    assert d.module(a)["restartCount"] == 1, "reset before ten minutes"
    clock.shift(0, 10 * 60 + 5)
    d.wait_status(a, "running", restartCount=0, timeout=15)


def test_token_file_is_renewed_at_once_when_the_clock_jumps_past_its_expiry(daemons, image,
                                                                            clock):
    a = unique("clktok")
    d = daemons(manifest({a: module(image, SLEEP)}))
    d.start(env=clock.env)
    m = d.wait_status(a)
    path = os.path.join(d.berth.run_dir, "modules", a, "token")
    wait_for(lambda: os.path.exists(path), 10, what="token file")
    with open(path) as f:
        first = f.read().strip()
    clock.shift(2 * 3600)  # tokens live 3600 s: the first one has expired

    def renewed():
        with open(path) as f:
            return f.read().strip() != first
    wait_for(renewed, 15, interval=0.1, what="a token renewed after the jump")
    with open(path) as f:
        token = f.read().strip()
    resource = "%s/devices/Hannover01/modules/%s" % (HUB_HOST, a)
    expiry = sas_verify(token, module_key(a, m["generationId"]), resource)
    assert expiry > time.time() + 2 * 3600


# pid 1 of a module that ignores SIGTERM: its stop takes the whole grace period.
STUBBORN = ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.2; done"]


def timed(d, *args):
    start = time.monotonic()
    p = d.berth(*args)
    return time.monotonic() - start, p


def test_daemon_answers_while_a_removed_module_takes_its_grace_period(daemons, image):
    slow, other = unique("slow"), unique("other")
    d = daemons(manifest({slow: module(image, STUBBORN, create={"StopTimeout": 6}),
                          other: module(image, SLEEP)})).start()
    d.wait_status(slow)
    d.wait_log(slow, "ready")
    first = d.wait_status(other)
    d.deploy(manifest({other: module(image, SLEEP)}))
    wait_for(lambda: (d.module(slow) or {}).get("description") == "stopping", 5,
             interval=0.1, what="the removed module stopping")
    assert cgroup_pids(slow)
    took, _ = timed(d, "list")
    assert took < 3.0, "berth list took %.1f s during a module's stop" % took
    # Another module's crash is handled meanwhile.
    kill_module(other)
    m = d.wait_status(other, "running", restartCount=1, timeout=8)
    assert m["shimPid"] != first["shimPid"]
    assert d.module(slow)["description"] == "stopping"
    d.wait_gone(slow, timeout=15)
    assert not cgroup_pids(slow)


def test_restart_answers_after_the_stop_and_the_daemon_answers_meanwhile(daemons, image):
    a = unique("rst")
    d = daemons(manifest({a: module(image, STUBBORN, create={"StopTimeout": 4})})).start()
    before = d.wait_status(a)
    d.wait_log(a, "ready")
    start = time.monotonic()
    restart = subprocess.Popen(d.berth.cmd("restart", a), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        wait_for(lambda: d.module(a)["description"] == "stopping", 5, interval=0.1,
                 what="the module stopping")
        took, _ = timed(d, "list")
        assert took < 3.0, "berth list took %.1f s during a restart" % took
        out, err = restart.communicate(timeout=30)
    finally:
        if restart.poll() is None:
            restart.kill()
            restart.wait()
    assert restart.returncode == 0, err
    assert time.monotonic() - start >= 3.5, "berth restart answered before the stop"
    m = d.wait_status(a)
    assert m["shimPid"] != before["shimPid"] and m["restartCount"] == 0


def test_restart_gives_a_failed_module_its_restarts_back(daemons, image, tmp_path):
    a = unique("revive")
    data = tmp_path / "data"
    data.mkdir()
    cmd = ["/bin/sh", "-c", "test -f /data/ok || exit 3; exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd, restart="on-failure",
                                    create={"HostConfig": {"Binds": ["%s:/data:ro" % data]}})}),
                restart_backoff_unit_ms=0).start()
    m = d.wait_status(a, "failed", timeout=60)
    assert m["restartCount"] == 20
    (data / "ok").write_text("fixed\n")
    d.berth("restart", a)
    m = d.wait_status(a, "running", timeout=20)
    assert m["restartCount"] == 0


def control_call(d, data, timeout=10):
    """Sends raw bytes on berthd.sock; returns the daemon's answer line."""
    import json
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(os.path.join(d.berth.run_dir, "berthd.sock"))
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the daemon stopped reading (a request too large): its answer is there
        out = b""
        while not out.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return json.loads(out) if out else None


def test_malformed_cli_requests_are_answered_with_400_and_change_nothing(daemons, image):
    a = unique("hostile")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    before = d.wait_status(a)
    cases = [b"not json\n", b"{\"op\": 5}\n", b"[1,2,3]\n", b"{\"op\":\"frobnicate\"}\n",
             b"[" * 100 + b"]" * 100 + b"\n", b"{\"op\":\"deploy\"}\n",
             b"{\"op\":\"deploy\",\"manifest\":\"{}\"}\n",
             b"{\"op\":\"deploy\",\"manifest\":5}\n", b"{\"op\":\"restart\"}\n",
             b"{\"op\":\"token\",\"module\":\"x\",\"ttl\":-1}\n",
             b"{\"op\":\"list\",\"\xff\xfe\":1}\n"]
    for data in cases:
        reply = control_call(d, data)
        assert reply and reply["status"] in (400, 404), (data, reply)
    reply = control_call(d, b"{\"op\":\"list\"" + b" " * (4 * 1024 * 1024))
    assert reply == {"status": 400, "error": "request too large"}
    assert control_call(d, b"{\"op\":\"list\"}\n")["status"] == 200  # a well-formed one
    m = d.wait_status(a)
    assert m["shimPid"] == before["shimPid"]
    assert [x["name"] for x in d.modules().values()] == [a]


def test_idle_cli_connections_are_closed_so_others_get_through(daemons):
    import socket
    d = daemons(manifest({})).start()
    path = os.path.join(d.berth.run_dir, "berthd.sock")
    idle = []
    for _ in range(16):  # every client slot
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        idle.append(s)
    try:
        wait_for(lambda: b"too many clients" in d.berth("list", check=False).stderr, 10,
                 what="the slots taken")
        start = time.monotonic()
        wait_for(lambda: d.berth("list", check=False).returncode == 0, 20, interval=0.5,
                 what="berth list answered again")
        assert time.monotonic() - start < 15
        idle[0].settimeout(1)
        assert b"no complete request in time" in idle[0].recv(4096)
    finally:
        for s in idle:
            s.close()


def running(pid):
    """Whether pid is a live process (not a zombie waiting for its reaper)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def open_fds(pid):
    return sorted(os.listdir("/proc/%d/fd" % pid), key=int)


def test_descriptors_do_not_grow_over_many_restarts(daemons, image):
    a, b = unique("fdcrash"), unique("fdrst")
    d = daemons(manifest({}), restart_backoff_unit_ms=0).start()
    d.berth("list")
    baseline = open_fds(d.proc.pid)
    crash = module(image, ["/bin/sh", "-c", "exit 1"], restart="on-failure")
    quick = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    d.deploy(manifest({a: crash, b: module(image, quick)}))
    d.wait_status(a, "failed", timeout=60)
    for _ in range(5):
        d.berth("restart", b)
        d.wait_status(b)
    for _ in range(20):
        d.berth("list")
        d.berth("token", b)
    d.deploy(manifest({}))
    d.wait_gone(a)
    d.wait_gone(b)
    assert open_fds(d.proc.pid) == baseline


def test_temporaries_of_an_interrupted_write_are_removed_at_start(daemons):
    d = daemons(manifest({}))
    agent = os.path.join(d.berth.root, "agent")
    os.makedirs(agent, exist_ok=True)
    stale = [os.path.join(agent, "modules.json.tmp999999"),
             os.path.join(d.berth.run_dir, "hub.json.tmp999999")]
    for p in stale:
        with open(p, "w") as f:
            f.write("{\"half\": ")
    keep = os.path.join(agent, "notes.tmpl")
    with open(keep, "w") as f:
        f.write("not ours to remove\n")
    d.start()
    assert not any(os.path.exists(p) for p in stale)
    assert os.path.exists(keep)


def hub_pids(d):
    with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
        children = f.read().split()
    found = []
    for pid in children:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as c:
                if b"\0hub\0" in c.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_deployment_applied_while_the_hub_starts_does_not_kill_it(daemons, slowstart_lib):
    d = daemons(manifest({}), hub=True)
    d.start(env=dict(os.environ, LD_PRELOAD=slowstart_lib, SLOWSTART_MS="2000"))
    wait_for(lambda: hub_pids(d), 15, what="hub process")
    first = hub_pids(d)
    d.deploy(manifest({}, routes={"up": "FROM /messages/* INTO $upstream"}))
    time.sleep(3)  # past the hub's slow start
    wait_for(lambda: hub_status(d)["routes"] == 1, 10, what="the route in the hub")
    assert hub_pids(d) == first
    assert "hub killed" not in d.log_text() and "hub exited" not in d.log_text()


def test_instances_whose_records_were_lost_are_taken_back(daemons, image):
    a = unique("lost")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    before = d.wait_status(a)
    d.kill()
    with open(os.path.join(d.berth.root, "agent", "modules.json"), "w") as f:
        f.write("{\"modules\": [ garbage")
    d.start()
    wait_for(lambda: d.module(a).get("shimPid") not in (None, before["shimPid"]), 30,
             interval=0.2, what="the instance created again")
    m = d.wait_status(a, timeout=30)
    assert m["restartCount"] == 0
    assert not running(before["shimPid"]), "the old instance runs on"
    time.sleep(1)
    assert d.module(a)["shimPid"] == m["shimPid"]
    assert "a running instance without a record" in d.log_text()


def test_modules_of_an_earlier_boot_start_again_at_once_with_no_restart_counted(daemons, image):
    import json
    a = unique("boot")
    d = daemons(manifest({a: module(image, SLEEP)}), restart_backoff_unit_ms=60000).start()
    before = d.wait_status(a)
    # What a reboot does: the daemon, the shim and the module gone, a new boot id.
    d.kill()
    os.kill(before["shimPid"], 9)
    kill_module(a)
    wait_for(lambda: not cgroup_pids(a) and not running(before["shimPid"]), 10,
             what="the instance gone")
    path = os.path.join(d.berth.root, "agent", "modules.json")
    with open(path) as f:
        records = json.load(f)
    assert records["boot_id"]
    records["boot_id"] = "00000000-0000-0000-0000-000000000000"
    with open(path, "w") as f:
        json.dump(records, f)
    d.start()
    m = d.wait_status(a, "running", timeout=10)
    assert m["restartCount"] == 0 and m["shimPid"] != before["shimPid"]
    assert "the system restarted since it ran" in d.log_text()


def test_module_whose_shim_was_killed_is_started_again(daemons, image):
    a = unique("shimkill")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    before = d.wait_status(a)
    os.kill(before["shimPid"], 9)  # the OOM killer's choice, say: no cleanup at all
    m = d.wait_status(a, "running", restartCount=1, timeout=15)
    assert m["shimPid"] != before["shimPid"] and m["exitCode"] == 255
    assert len(cgroup_pids(a)) == 1, "the module's one process"
