"""Helpers for the cloud link's tests: a real mosquitto on loopback standing
in for the upstream (plain or TLS, with a CA of the test's own), a
subscriber that records every message the upstream received, and a test CA
made with the openssl command."""
import os
import queue
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt
import pytest

from conftest import free_port, wait_for
from daemonlib import HUB_HOST
from hubkit import UnixClient, control_call


def make_ca(d, names=(), ips=()):
    """A CA and a server certificate it signed for names and ips (SAN).
    Returns (ca_cert, server_cert, server_key)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=berth test CA")
    san = ",".join(["DNS:" + n for n in names] + ["IP:" + i for i in ips])
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=%s" % (list(names) + list(ips))[0])
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return tuple(os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))


class Broker:
    """mosquitto on 127.0.0.1 (or addr) as the upstream. Persistent, so a
    subscriber's queued messages survive stop() and start() (SIGTERM writes
    the database)."""

    def __init__(self, d, tls=None, addr="127.0.0.1", extra="", also=()):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.addr = addr
        self.port = free_port()
        self.tls = tls
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        lines = ["user root", "listener %d %s" % (self.port, addr), "allow_anonymous true",
                 "persistence true", "persistence_location %s/" % self.dir,
                 "autosave_interval 0", "max_queued_messages 0", "max_inflight_messages 0",
                 "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "connection_messages true",
                 "log_dest file %s" % self.log_path]
        for a in also:  # the same port on more addresses
            lines += ["listener %d %s" % (self.port, a)]
        if tls:
            lines += ["certfile %s" % tls[1], "keyfile %s" % tls[2]]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.proc = None
        self.log = None

    def url(self, host=None):
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", host or self.addr, self.port)

    def start(self):
        self.log = open(os.path.join(self.dir, "mosquitto.out"), "ab")
        # Started again on the port it had, it can find the port still held
        # for a moment by the connections of its previous run: tried again.
        for attempt in range(10):
            seen = len(self.log_text())
            self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log,
                                         stderr=subprocess.STDOUT)
            wait_for(lambda: self._listening() or self.proc.poll() is not None, 10,
                     what="mosquitto on port %d" % self.port)
            if self.proc.poll() is None or \
                    "Address already in use" not in self.log_text()[seen:]:
                break
            time.sleep(0.5)
        assert self.proc.poll() is None, self.log_text()
        return self

    def _listening(self):
        try:
            socket.create_connection((self.addr, self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        if self.log:
            self.log.close()
            self.log = None
        self.proc = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def parse_bag(topic):
    """The property bag of an upstream topic, decoded."""
    bag = topic.split("/messages/events/", 1)[1].rstrip("/")
    out = {}
    for pair in bag.split("&"):
        if pair:
            k, _, v = pair.partition("=")
            out[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    return out


class Cloud:
    """A persistent-session QoS 1 subscriber to devices/# on the broker, as
    the cloud side that reads what the device sent. It reconnects by itself
    when the broker comes back."""

    def __init__(self, broker, ca=None, host=None):
        self.broker = broker
        self.lock = threading.Lock()
        self.messages = []
        # Sent again by the broker to this reader (DUP set): not the device's doing.
        self.redelivered = 0
        self.c = mqtt.Client(client_id="cloud-reader", clean_session=False,
                             protocol=mqtt.MQTTv311)
        if ca:
            self.c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe("devices/#", 1)
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.connect(host or broker.addr, broker.port, 30)
        self.c.loop_start()
        wait_for(lambda: "cloud-reader" in broker.log_text(), 10, what="the reader to connect")
        time.sleep(0.2)

    def _on_message(self, c, u, m):
        with self.lock:
            self.messages.append((m.topic, m.payload))
            if m.dup:
                self.redelivered += 1

    def count(self):
        with self.lock:
            return len(self.messages)

    def all(self):
        with self.lock:
            return list(self.messages)

    def wait(self, n, timeout=30):
        wait_for(lambda: self.count() >= n, timeout,
                 what="%d messages upstream (got %d)" % (n, self.count()))
        return self.all()

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def upstream_status(hub):
    return hub.control_call({"op": "status"}).get("upstream")


@pytest.fixture
def brokers(tmp_path):
    """brokers(**kw) makes a Broker (not started); all are stopped at the end."""
    made = []

    def make(name="mq", **kw):
        b = Broker(tmp_path / name, **kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def clouds():
    """clouds(broker, **kw) makes a Cloud reader; all are closed at the end."""
    made = []

    def make(broker, **kw):
        c = Cloud(broker, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def hub_status(d):
    """The status a daemon's hub answers on its control socket."""
    return control_call(os.path.join(d.berth.run_dir, "hubctl.sock"), {"op": "status"})


class ModuleClient:
    """A module's MQTT connection to the daemon's hub, made from the host
    with the token `berth token` gives (the hub accepts host processes)."""

    def __init__(self, d, name):
        self.device = "Hannover01"
        self.name = name
        token = d.berth("token", name).stdout.decode().strip()
        self.c = UnixClient(os.path.join(d.berth.run_dir, "hub.sock"),
                            "%s/%s" % (self.device, name))
        self.c.max_inflight_messages_set(64)
        self.c.max_queued_messages_set(0)
        self.c.username_pw_set("%s/%s/%s/?api-version=2018-06-30" % (HUB_HOST, self.device, name),
                               token)
        acks = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc: acks.put(rc)
        self.c.connect("localhost", 1883, 60)
        self.c.loop_start()
        assert acks.get(timeout=10) == 0

    def send_many(self, output, n, props=lambda i: {}, body=lambda i: b"m%d" % i):
        infos = []
        for i in range(n):
            bag = {"$.on": output}
            bag.update(props(i))
            topic = "devices/%s/modules/%s/messages/events/%s" % (
                self.device, self.name,
                urllib.parse.urlencode(bag, quote_via=urllib.parse.quote))
            infos.append(self.c.publish(topic, body(i), 1))
        for info in infos:
            info.wait_for_publish()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()
