"""The store with the daemon running the hub: the hub is killed (SIGKILL) at
ten points while a module streams QoS 1 messages along a route, the daemon
starts it again each time, and every message the sender had a PUBACK for
reaches the receiving module, which reconnects with its persistent session
and never subscribes again."""
import os
import signal
import struct
import threading
import time

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import HUB_HOST, manifest, module, unique
from hubkit import Raw, connect_packet, enc_str, packet
from test_daemon_hub import SLEEP, hub_pid

KILLS = 10
WINDOW = 32


class Client:
    """A module's raw MQTT connection to the daemon's hub socket that comes
    back after the hub does."""

    def __init__(self, d, name, clean):
        self.d, self.name, self.clean = d, name, clean
        self.sock = os.path.join(d.berth.run_dir, "hub.sock")
        self.token = d.berth("token", name).stdout.decode().strip()
        self.r = None

    def connect(self, deadline):
        while time.monotonic() < deadline:
            try:
                r = Raw(self.sock, timeout=2)
                r.send(connect_packet("Hannover01/%s" % self.name,
                                      "%s/Hannover01/%s/?api-version=2018-06-30" % (
                                          HUB_HOST, self.name), self.token, clean=self.clean))
                p = r.recv_packet()
                if p and p[0] == 0x20 and p[1][1] == 0:
                    self.r = r
                    return p[1][0] & 1
                r.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("%s: no CONNACK from the hub" % self.name)


def sender(c, n, acked, stop):
    """Messages 0..n-1 at QoS 1, WINDOW in flight; what was not
    acknowledged when the hub died is sent again after it is back."""
    topic = "devices/Hannover01/modules/%s/messages/events/%%24.on=out" % c.name
    todo = list(range(n))
    pid = 0
    while todo and not stop.is_set():
        c.connect(time.monotonic() + 30)
        pending = {}
        try:
            while todo or pending:
                while todo and len(pending) < WINDOW:
                    pid = pid % 65535 + 1
                    i = todo.pop(0)
                    pending[pid] = i
                    body = enc_str(topic) + struct.pack(">H", pid) + (b"%08d" % i).ljust(256, b"s")
                    c.r.send(packet(0x32, body))
                p = c.r.recv_packet()
                if p is None:
                    break
                if p[0] == 0x40:
                    acked.add(pending.pop(struct.unpack(">H", p[1])[0]))
        except OSError:
            pass
        todo = sorted(set(pending.values()) | set(todo))
        c.r.close()


def receiver(c, got, stop):
    """Acknowledges and records every delivery; after the hub dies, comes
    back with its persistent session and subscribes to nothing."""
    while not stop.is_set():
        try:
            present = c.connect(time.monotonic() + 30)
        except AssertionError:
            continue
        got.append(("connected", present))
        c.r.s.settimeout(0.5)
        try:
            while not stop.is_set():
                try:
                    p = c.r.recv_packet()
                except TimeoutError:
                    continue
                if p is None:
                    break
                first, body = p
                if first & 0xf0 != 0x30:
                    continue
                tlen = struct.unpack(">H", body[:2])[0]
                pid = body[2 + tlen:4 + tlen]
                got.append(int(body[4 + tlen:12 + tlen]))
                c.r.send(packet(0x40, pid))
        except OSError:
            pass
        c.r.close()


def test_every_acknowledged_message_arrives_across_ten_hub_kills(daemons, image):
    a, b = unique("send"), unique("recv")
    route = 'FROM /messages/modules/%s/* INTO BrokeredEndpoint("/modules/%s/inputs/in1")' % (a, b)
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)},
                         routes={"ab": route}), hub=True).start()
    d.wait_status(a)
    d.wait_status(b)
    wait_for(lambda: hub_pid(d), 10, what="hub process")
    rx = Client(d, b, clean=False)
    rx.connect(time.monotonic() + 10)
    r = rx.r
    r.send(packet(0x82, struct.pack(">H", 1) + enc_str("devices/Hannover01/modules/%s/#" % b) +
                  b"\x01"))
    assert r.recv_packet()[0] == 0x90
    r.close()
    n = 6000
    acked, got, stop = set(), [], threading.Event()
    threads = [threading.Thread(target=sender, args=(Client(d, a, True), n, acked, stop)),
               threading.Thread(target=receiver, args=(rx, got, stop))]
    for t in threads:
        t.start()
    try:
        for k in range(KILLS):
            before = len(acked)
            # Each kill finds the receiver connected again after the last.
            wait_for(lambda: (len(acked) >= before + 150 or len(acked) == n) and
                     sum(not isinstance(x, int) for x in got) > k, 30,
                     what="progress before kill %d" % (k + 1))
            pid = hub_pid(d)
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: hub_pid(d) not in (None, pid), 30, what="the hub started again")
        wait_for(lambda: len(acked) == n, 60, what="every message acknowledged")
        wait_for(lambda: acked <= set(x for x in got if isinstance(x, int)), 30,
                 what="every acknowledged message delivered")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    numbers = [x for x in got if isinstance(x, int)]
    sessions = [x[1] for x in got if not isinstance(x, int)]
    assert d.log_text().count("hub killed by signal 9") == KILLS
    assert set(range(n)) == acked <= set(numbers)
    # Every reconnection found its session: nothing was subscribed again.
    assert len(sessions) > KILLS and all(sessions), sessions
    # Duplicates come only from what was in flight at a kill: at most a
    # window of the sender's and one of the receiver's each time.
    dups = len(numbers) - len(set(numbers))
    print("%d messages, %d delivered twice across %d kills" % (n, dups, KILLS))
    assert dups <= KILLS * 2 * WINDOW
