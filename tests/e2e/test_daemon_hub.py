"""The daemon runs the hub: its socket, module credentials, restarts."""
import os
import signal
import stat

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import HUB_HOST, manifest, module, unique
from hubkit import Raw, connect_packet

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]


def mqtt_connect(path, client_id, username, password):
    """One MQTT 3.1.1 CONNECT over a Unix socket; returns the CONNACK code."""
    r = Raw(path)
    try:
        r.send(connect_packet(client_id, username, password, keepalive=30))
        got = r.recv_packet()
    finally:
        r.close()
    assert got and got[0] == 0x20 and len(got[1]) == 2, got
    return got[1][1]


def connect_as(d, name):
    token = d.berth("token", name).stdout.decode().strip()
    return mqtt_connect(os.path.join(d.berth.run_dir, "hub.sock"), "Hannover01/%s" % name,
                        "%s/Hannover01/%s/?api-version=2018-06-30" % (HUB_HOST, name), token)


def hub_pid(d):
    with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
        children = f.read().split()
    for pid in children:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as c:
                if b"\0hub\0" in c.read():
                    return int(pid)
        except OSError:
            pass  # a child that is exiting (a pull, the killed hub)
    return None


def test_hub_accepts_a_module_token_and_comes_back_after_a_crash(daemons, image):
    a = unique("hub")
    cmd = ["/bin/sh", "-c", "test -S /run/berth/hub.sock && echo hub-socket-present; exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd)},
                         routes={"up": "FROM /messages/* INTO $upstream"}), hub=True).start()
    d.wait_status(a)
    d.wait_log(a, "hub-socket-present")
    wait_for(lambda: hub_pid(d), 10, what="hub process")
    sock = os.path.join(d.berth.run_dir, "hub.sock")
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    wait_for(lambda: connect_as(d, a) == 0, 10, what="CONNACK 0 for the module's token")
    bad = mqtt_connect(sock, "Hannover01/%s" % a,
                       "%s/Hannover01/%s/?api-version=2018-06-30" % (HUB_HOST, a),
                       "SharedAccessSignature sr=x&sig=y&se=1")
    assert bad != 0
    first = hub_pid(d)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: hub_pid(d) not in (None, first), 15, what="hub restarted")
    wait_for(lambda: connect_as(d, a) == 0, 10, what="CONNACK 0 after the hub restart")
    assert "hub killed by signal 9" in d.log_text()


def test_hub_socket_inside_modules_survives_a_daemon_restart(daemons, image):
    a = unique("hubk")
    probe = ["/bin/sh", "-c", "while sleep 0.2; do test -S /run/berth/hub.sock && "
             "echo present-$(stat -c %i /run/berth/hub.sock); done"]
    d = daemons(manifest({a: module(image, probe)}), hub=True,
                stop_modules_on_exit=False).start()
    d.wait_status(a)
    before = os.stat(os.path.join(d.berth.run_dir, "hub.sock")).st_ino
    d.wait_log(a, "present-%d" % before)
    d.kill()
    d.start()
    after = os.stat(os.path.join(d.berth.run_dir, "hub.sock")).st_ino
    assert after != before
    d.wait_log(a, "present-%d" % after)
    wait_for(lambda: connect_as(d, a) == 0, 10, what="CONNACK 0 from the new hub")
