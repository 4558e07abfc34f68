"""berth daemon: module lifecycle, restarts with backoff, crash safety,
shutdown, identities and the CLI."""
import datetime
import json
import os
import socket
import subprocess
import time

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import (DEVICE_KEY, HUB_HOST, cgroup_pids, kill_module, manifest, module,
                       module_key, sas_verify, unique)

SLEEP = ["/bin/sh", "-c", "echo started; exec sleep 1000"]


def test_two_modules_from_one_image_have_distinct_identities(daemons, image):
    a, b = unique("ida"), unique("idb")
    cmd = ["/bin/sh", "-c", "env | sort; echo token=$(cat /run/berth/module/token); exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd), b: module(image, cmd)})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    assert ma["generationId"] != mb["generationId"]
    for name, m, other in ((a, ma, b), (b, mb, a)):
        log = d.wait_log(name, r"token=SharedAccessSignature \S+").string
        assert "IOTEDGE_MODULEID=%s\n" % name in log
        assert "IOTEDGE_DEVICEID=Hannover01\n" in log
        assert "IOTEDGE_IOTHUBHOSTNAME=%s\n" % HUB_HOST in log
        assert "IOTEDGE_MODULEGENERATIONID=%s\n" % m["generationId"] in log
        assert "IOTEDGE_AUTHSCHEME=sasToken\n" in log
        assert "BERTH_HUB_SOCKET=/run/berth/hub.sock\n" in log
        assert "BERTH_TOKEN_FILE=/run/berth/module/token\n" in log
        assert "IOTEDGE_MODULEID=%s\n" % other not in log
        assert cgroup_pids(name), "no process in cgroup berth/%s" % name
    assert set(cgroup_pids(a)).isdisjoint(cgroup_pids(b))
    assert os.path.exists(os.path.join(d.instance_dir(a), "log"))
    assert os.path.exists(os.path.join(d.instance_dir(b), "log"))


def test_token_file_in_module_verifies_with_module_key(daemons, image):
    a = unique("tok")
    cmd = ["/bin/sh", "-c", "echo token=$(cat /run/berth/module/token); exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd)})).start()
    m = d.wait_status(a)
    token = d.wait_log(a, r"token=(SharedAccessSignature \S+)").group(1)
    key = module_key(a, m["generationId"])
    expiry = sas_verify(token, key, "%s/devices/Hannover01/modules/%s" % (HUB_HOST, a))
    assert 3000 < expiry - time.time() <= 3600


def test_berth_token_verifies_with_the_module_key(daemons, image):
    a = unique("tok")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    m = d.wait_status(a)
    token = d.berth("token", a, "--ttl", "120").stdout.decode().strip()
    key = module_key(a, m["generationId"])
    expiry = sas_verify(token, key, "%s/devices/Hannover01/modules/%s" % (HUB_HOST, a))
    assert 100 < expiry - time.time() <= 120
    p = d.berth("token", "no-such-module", check=False)
    assert p.returncode == 1 and b"not in the deployment" in p.stderr


def utc(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()




def test_killed_module_comes_back_after_backoff(daemons, image):
    a = unique("kill")
    d = daemons(manifest({a: module(image, SLEEP)}), restart_backoff_unit_ms=2000).start()
    first = d.wait_status(a, restartCount=0)
    kill_module(a)
    m = d.wait_status(a, "backoff", timeout=10)
    assert m["exitCode"] == 137
    assert m["description"].startswith("Backoff (137)")
    m = d.wait_status(a, "running", restartCount=1, timeout=15)
    assert m["shimPid"] != first["shimPid"]
    assert m["lastRestartTimeUtc"]
    # The first backoff is one unit: the restart comes 2 s after the exit.
    waited = utc(m["lastStartTimeUtc"]) - utc(m["lastExitTimeUtc"])
    assert 2.0 <= waited < 8.0, waited


def test_module_restarts_count_up_then_fail(daemons, image):
    a = unique("fail")
    d = daemons(manifest({a: module(image, ["/bin/sh", "-c", "exit 3"], restart="on-failure")}),
                restart_backoff_unit_ms=0).start()
    m = d.wait_status(a, "failed", timeout=60)
    assert m["restartCount"] == 20
    assert m["exitCode"] == 3
    assert m["description"].startswith("Failed (3)")


def test_clean_exit_with_on_failure_is_stopped(daemons, image):
    a = unique("done")
    d = daemons(manifest({a: module(image, ["/bin/true"], restart="on-failure")})).start()
    m = d.wait_status(a, "stopped", timeout=20)
    assert m["exitCode"] == 0 and m["restartCount"] == 0


def test_sigkilled_daemon_reattaches_without_duplicates_or_restarts(daemons, image):
    a, b = unique("ra"), unique("rb")
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)})).start()
    before = {n: d.wait_status(n) for n in (a, b)}
    procs = {n: sorted(cgroup_pids(n)) for n in (a, b)}
    d.kill()
    d.start()
    time.sleep(1.5)  # several reconcile passes
    for n in (a, b):
        m = d.wait_status(n)
        assert m["shimPid"] == before[n]["shimPid"]
        assert m["restartCount"] == 0
        assert m["lastStartTimeUtc"] == before[n]["lastStartTimeUtc"]
        assert sorted(cgroup_pids(n)) == procs[n], "instance %s duplicated or restarted" % n
    assert "re-attached" in d.log_text()


def test_module_that_exited_while_daemon_was_down_follows_policy(daemons, image):
    a = unique("down")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    d.kill()
    kill_module(a)
    wait_for(lambda: not cgroup_pids(a), 10, what="module gone")
    d.start()
    m = d.wait_status(a, "running", restartCount=1, timeout=20)
    assert m["exitCode"] == 137


def test_sigterm_stops_modules_in_reverse_startup_order(daemons, image):
    names = [unique("o%d" % i) for i in range(3)]
    mods = {n: module(image, SLEEP, order=i) for i, n in enumerate(names)}
    d = daemons(manifest(mods)).start()
    for n in names:
        d.wait_status(n)
        assert cgroup_pids(n)
    d.terminate()
    assert d.proc.returncode == 0
    log = d.log_text()
    stops = [log.index("module %s: stopping" % n) for n in names]
    assert stops[2] < stops[1] < stops[0], log
    for n in names:
        assert not cgroup_pids(n)


def test_stop_modules_on_exit_false_leaves_modules_for_the_next_daemon(daemons, image):
    a = unique("keep")
    d = daemons(manifest({a: module(image, SLEEP)}), stop_modules_on_exit=False).start()
    before = d.wait_status(a)
    pids = sorted(cgroup_pids(a))
    d.terminate()
    assert sorted(cgroup_pids(a)) == pids
    d.start()
    m = d.wait_status(a)
    assert m["shimPid"] == before["shimPid"] and m["restartCount"] == 0


def test_startup_order_is_respected(daemons, image):
    first, second = unique("first"), unique("second")
    slow = ["/bin/sh", "-c", "exec sleep 1000"]
    mods = {second: module(image, slow, order=5), first: module(image, slow, order=1)}
    d = daemons(manifest(mods)).start()
    a, b = d.wait_status(first), d.wait_status(second)
    assert a["lastStartTimeUtc"] <= b["lastStartTimeUtc"]
    log = d.log_text()
    assert log.index("module %s started" % first) < log.index("module %s started" % second)


def test_later_startup_group_waits_until_the_earlier_one_runs(daemons, image, registry):
    first, second = unique("gate1"), unique("gate2")
    missing = "%s/busybox:not-there" % registry.host
    slow = ["/bin/sh", "-c", "exec sleep 1000"]
    d = daemons(manifest({first: module(missing, slow, order=1),
                          second: module(image, slow, order=2)}),
                restart_backoff_unit_ms=500).start()
    d.wait_status(first, "backoff", timeout=20)
    time.sleep(1.5)
    m = d.module(second)
    assert m["runtimeStatus"] == "unknown" and "lower startupOrder" in m["description"], m
    assert not cgroup_pids(second)
    d.deploy(manifest({first: module(image, slow, order=1),
                       second: module(image, slow, order=2)}))
    a, b = d.wait_status(first, timeout=30), d.wait_status(second, timeout=30)
    assert a["lastStartTimeUtc"] <= b["lastStartTimeUtc"]
    assert cgroup_pids(second)


def test_restart_command_restarts_one_module(daemons, image):
    a, b = unique("rsa"), unique("rsb")
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    d.berth("restart", a)
    m = d.wait_status(a)
    assert m["shimPid"] != ma["shimPid"]
    assert d.module(b)["shimPid"] == mb["shimPid"]


def test_list_prints_iotedge_columns(daemons, image):
    a = unique("lst")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    out = d.berth("list").stdout.decode().splitlines()
    assert out[0].split() == ["NAME", "STATUS", "DESCRIPTION", "CONFIG"]
    row = [l for l in out if l.startswith(a)][0]
    assert "running" in row and "Up " in row and image in row


def test_list_json_has_edge_agent_fields(daemons, image):
    a = unique("lsj")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    m = json.loads(d.berth("list", "--json").stdout)[0]
    for k in ("runtimeStatus", "exitCode", "statusDescription", "lastStartTimeUtc",
              "lastExitTimeUtc", "restartCount", "lastRestartTimeUtc"):
        assert k in m
    assert m["lastStartTimeUtc"].endswith("Z")


def test_notify_socket_gets_ready_and_stopping(daemons, tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    d = daemons(manifest({}))
    d.start(env=dict(os.environ, NOTIFY_SOCKET=path))
    assert s.recv(256) == b"READY=1"
    d.terminate()
    assert s.recv(256) == b"STOPPING=1"
    s.close()


def test_cli_without_daemon_says_so_in_one_line(berth):
    p = berth("list", check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.count("\n") == 1
    assert "cannot reach the daemon at %s/berthd.sock: is berth daemon running?" % berth.run_dir in err


def test_version_shows_the_daemon(daemons):
    d = daemons(manifest({})).start()
    out = d.berth("version").stdout.decode().splitlines()
    assert out[0].startswith("berth ")
    assert out[1].startswith("daemon ") and "Hannover01" in out[1]


def test_logs_tail_and_follow(daemons, image):
    a = unique("logs")
    cmd = ["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; "
           "sleep 1; echo later; exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd)})).start()
    d.wait_status(a)
    d.wait_log(a, "line5")
    out = d.berth("logs", a, "--tail", "2").stdout.decode()
    assert out.splitlines()[-2:] == ["line4", "line5"] or out.splitlines() == ["line5", "later"]
    f = subprocess.Popen(d.berth.cmd("logs", "-f", a), stdout=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 10
        while b"later" not in seen and time.monotonic() < deadline:
            seen += f.stdout.read1(4096)
        assert b"later" in seen
    finally:
        f.kill()
        f.wait()


def test_check_reports_marks(berth, tmp_path, registry):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"device_id": "d1", "iothub_hostname": "h.example.net",
                               "device_key": DEVICE_KEY,
                               "registries": {registry.host: {"insecure": True}}}))
    p = berth("check", "--config", str(cfg), check=False)
    out = p.stdout.decode()
    assert "\u221a config %s is valid" % cfg in out
    assert "\u221a registry %s is reachable" % registry.host in out
    assert "kernel namespaces" in out and "seccomp" in out and "cgroup" in out
    assert "free for the image store at %s" % berth.root in out
    assert "free for the message store at %s/hub" % berth.root in out
    assert "\u203c cannot reach the daemon" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    p = berth("check", "--config", str(bad), check=False)
    assert p.returncode == 1
    assert "\u00d7 config %s: $.device_id: required but missing" % bad in p.stdout.decode()


def test_token_file_is_renewed_at_half_life(daemons, image):
    a = unique("renew")
    d = daemons(manifest({a: module(image, SLEEP)}), token_ttl_secs=10).start()
    m = d.wait_status(a)
    path = os.path.join(d.berth.run_dir, "modules", a, "token")
    wait_for(lambda: os.path.exists(path), 10, what="token file")
    with open(path) as f:
        first = f.read().strip()
    resource = "%s/devices/Hannover01/modules/%s" % (HUB_HOST, a)
    key = module_key(a, m["generationId"])
    first_expiry = sas_verify(first, key, resource)

    def renewed():
        with open(path) as f:
            return f.read().strip() != first
    wait_for(renewed, 9, interval=0.2, what="a renewed token before the first expires")
    assert time.time() < first_expiry
    with open(path) as f:
        assert sas_verify(f.read().strip(), key, resource) > first_expiry


def test_cli_socket_answers_root_only(daemons):
    d = daemons(manifest({})).start()
    sock = os.path.join(d.berth.run_dir, "berthd.sock")
    assert os.stat(sock).st_mode & 0o777 == 0o600
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] +
                       d.berth.cmd("list"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 1
    assert "permission denied (root only)" in p.stderr.decode()
    assert d.berth("list").returncode == 0  # root, on the same socket


def test_second_daemon_on_the_same_state_directory_refuses_to_start(daemons):
    d = daemons(manifest({})).start()
    p = subprocess.run(d.berth.cmd("daemon", "--config", d.config_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 1
    assert b"another berth daemon is running with state directory" in p.stderr
    assert d.berth("version").stdout.count(b"\n") == 2, "the first daemon still answers"


def test_daemon_refuses_an_invalid_config_naming_the_path(berth, daemons, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"device_id": "d1", "iothub_hostname": "h.example.net",
                               "device_key": "not base64!", "hub": {"listen_tcp": "nope"}}))
    p = subprocess.run(berth.cmd("daemon", "--config", str(cfg)), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 1
    assert "config %s: $.device_key: expected a base64 key" % cfg in p.stderr.decode()
    assert not os.path.exists(os.path.join(berth.run_dir, "berthd.sock"))
    # The control: with a valid config, the same command makes the socket.
    daemons(manifest({})).start()
    assert os.path.exists(os.path.join(berth.run_dir, "berthd.sock"))
