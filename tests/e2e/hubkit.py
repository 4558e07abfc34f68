"""Helpers for the hub's end-to-end tests: a `berth hub` process with its own
config and directories, SAS tokens computed here from the IoT Hub definition
(independently of the C code), module clients (paho-mqtt over the hub's Unix
socket, and mosquitto_pub/sub), and a raw MQTT socket for byte-level tests.
"""
import base64
import hashlib
import hmac
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.parse

import paho.mqtt.client as mqtt
import pytest

from helpers import DEVICE_KEY, IOTHUB_HOSTNAME, module_key, wait_for  # noqa: F401

HOSTNAME = IOTHUB_HOSTNAME
ROUTE_AB = 'FROM /messages/modules/a/outputs/out1 INTO BrokeredEndpoint("/modules/b/inputs/in1")'


def sas_token(key_b64, resource, expiry):
    sr = urllib.parse.quote(resource, safe="")
    mac = hmac.new(base64.b64decode(key_b64), ("%s\n%d" % (sr, expiry)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    return "SharedAccessSignature sr=%s&sig=%s&se=%d" % (sr, sig, expiry)


def module_token(device, module, generation_id="gen1", ttl=3600, hostname=HOSTNAME):
    resource = "%s/devices/%s/modules/%s" % (hostname, device, module)
    return sas_token(module_key(module, generation_id), resource, int(time.time()) + ttl)


def username(device, module, hostname=HOSTNAME):
    return "%s/%s/%s/?api-version=2018-06-30" % (hostname, device, module)


class Hub:
    """A `berth hub` process. Its config is rewritten with write_config()
    and re-read on reload()."""

    def __init__(self, berth_bin, workdir, device="dev-%d" % os.getpid(), modules=None,
                 routes=None, extra=None):
        self.berth_bin = berth_bin
        self.dir = str(workdir)
        self.device = device
        self.socket = os.path.join(self.dir, "hub.sock")
        self.control = os.path.join(self.dir, "hubctl.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "hub.json")
        self.log_path = os.path.join(self.dir, "hub.log")
        self.modules = modules or {}
        self.routes = routes or {}
        self.extra = extra or {}
        self.proc = None
        self.write_config()

    def write_config(self):
        cfg = {
            "device_id": self.device,
            "iothub_hostname": HOSTNAME,
            "device_key": DEVICE_KEY,
            "socket": self.socket,
            "control_socket": self.control,
            "state_dir": self.state_dir,
            "routes": self.routes,
            "modules": {m: dict({"generation_id": "gen1"}, **spec)
                        for m, spec in self.modules.items()},
        }
        cfg.update(self.extra)
        cfg = {k: v for k, v in cfg.items() if v is not None}  # None: leave the key out
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f)
        os.rename(tmp, self.config_path)

    def start(self, *args, preexec_fn=None):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.berth_bin, "--debug", "hub", "--config",
                                      self.config_path] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=preexec_fn)
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10,
                 what="the hub socket")
        wait_for(lambda: "hub ready" in self.log_text() or self.proc.poll() is not None, 10,
                 what="the hub to be ready")
        assert self.proc.poll() is None, "hub exited:\n" + self.log_text()
        return self

    def reload(self):
        mark = self.log_text().count("config reloaded")
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log_text().count("config reloaded") > mark or
                 "reload refused" in self.log_text(), 10, what="the reload")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def cpu_seconds(self):
        """User and system CPU time the hub process has used."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for the hub")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10):
        return wait_for(lambda: text in self.log_text(), timeout, what="log line: " + text)

    def control_call(self, request, timeout=10):
        return control_call(self.control, request, timeout)

    def token(self, module, **kw):
        gen = self.modules.get(module, {}).get("generation_id", "gen1")
        kw.setdefault("generation_id", gen)
        return module_token(self.device, module, **kw)


def control_call(path, request, timeout=10):
    """One request on a hub's control socket (a hub of this kit's or a daemon's)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(json.dumps(request).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)


class UnixClient(mqtt.Client):
    """paho-mqtt 1.6 speaks TCP only; this one connects to a Unix socket."""

    def __init__(self, path, client_id, clean_session=True):
        super().__init__(client_id=client_id, clean_session=clean_session,
                         protocol=mqtt.MQTTv311)
        self.unix_path = path

    def _create_socket_connection(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self._connect_timeout)
        s.connect(self.unix_path)
        return s


class Module:
    """A module's MQTT client with every received message in a queue."""

    def __init__(self, hub, module, token=None, clean_session=True, client_id=None,
                 user=None, keepalive=60, will=None, path=None, tls=None):
        """tls=(host, port, ca file): over TCP with TLS (the gateway) instead
        of the Unix socket; the certificate is verified, its name is not."""
        self.hub = hub
        self.module = module
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.disconnects = queue.Queue()
        cid = client_id or "%s/%s" % (hub.device, module)
        if tls:
            self.c = mqtt.Client(client_id=cid, clean_session=clean_session,
                                 protocol=mqtt.MQTTv311)
            self.c.tls_set(ca_certs=tls[2], tls_version=ssl.PROTOCOL_TLS_CLIENT)
            self.c.tls_insecure_set(True)
            self.address = tls[:2]
        else:
            self.c = UnixClient(path or hub.socket, cid, clean_session)
            self.address = ("localhost", 1883)
        self.c.username_pw_set(user if user is not None else username(hub.device, module),
                               token if token is not None else hub.token(module))
        if will:
            self.c.will_set(*will)
        self.c.on_connect = lambda c, u, flags, rc: self.connack.put((rc, flags))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = lambda c, u, rc: self.disconnects.put(rc)
        self.keepalive = keepalive

    def connect(self, expect=0):
        self.c.connect(self.address[0], self.address[1], self.keepalive)
        self.c.loop_start()
        rc, flags = self.connack.get(timeout=10)
        assert rc == expect, "CONNACK %d, expected %d" % (rc, expect)
        return flags

    def subscribe(self, topic, qos=1):
        done = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, granted: done.put(granted)
        self.c.subscribe(topic, qos)
        return done.get(timeout=10)

    def publish(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos)
        if qos:
            info.wait_for_publish()
        return info

    def send(self, output, payload, props=None, qos=1):
        """Telemetry on an output, with application properties in the bag."""
        bag = {"$.on": output}
        bag.update(props or {})
        topic = "devices/%s/modules/%s/messages/events/%s" % (
            self.hub.device, self.module, urllib.parse.urlencode(bag, quote_via=urllib.parse.quote))
        return self.publish(topic, payload, qos)

    def get(self, timeout=5):
        return self.messages.get(timeout=timeout)

    def nothing(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def parse_bag(topic, after):
    """The property bag of a delivered topic, decoded."""
    bag = topic.split(after, 1)[1]
    out = {}
    for pair in bag.split("&"):
        if pair:
            k, _, v = pair.partition("=")
            out[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    return out


# ---- raw MQTT, byte by byte ----

def enc_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def remaining_length(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def connect_packet(client_id, user=None, password=None, clean=True, keepalive=60, will=None,
                   level=4, flags_extra=0):
    flags = (0x02 if clean else 0) | flags_extra
    payload = enc_str(client_id)
    if will:
        flags |= 0x04 | (will[2] << 3)
        payload += enc_str(will[0]) + enc_str(will[1])
    if user is not None:
        flags |= 0x80
        payload += enc_str(user)
    if password is not None:
        flags |= 0x40
        payload += enc_str(password)
    body = enc_str("MQTT") + bytes([level, flags]) + struct.pack(">H", keepalive) + payload
    return packet(0x10, body)


class Raw:
    """A raw connection to the hub's Unix socket."""

    def __init__(self, path, timeout=5):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def send(self, data):
        self.s.sendall(data)

    def recv_packet(self):
        """(first byte, body) of the next packet, or None when the hub closed."""
        head = self._read(1)
        if not head:
            return None
        mult, length = 1, 0
        while True:
            b = self._read(1)
            if not b:
                return None
            length += (b[0] & 0x7f) * mult
            mult *= 128
            if not b[0] & 0x80:
                break
        body = self._read(length) if length else b""
        return head[0], body

    def _read(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.s.recv(n - len(data))
            except ConnectionResetError:
                return b""
            if not chunk:
                return b""
            data += chunk
        return data

    def closed_by_peer(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(4096)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# ---- fixtures (import them into a test module to use them) ----

@pytest.fixture
def make_hub(berth_bin):
    """make_hub(modules=..., routes=..., extra=...) starts a hub in a short
    temporary directory (Unix socket paths are limited to 108 bytes)."""
    hubs, dirs = [], []

    def make(start=True, preexec_fn=None, **kw):
        d = tempfile.mkdtemp(prefix="berth-hub-")
        dirs.append(d)
        kw.setdefault("device", "Hannover01")
        h = Hub(berth_bin, d, **kw)
        hubs.append(h)
        return h.start(preexec_fn=preexec_fn) if start else h

    yield make
    for h in hubs:
        h.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def two_modules(make_hub, **kw):
    """A hub with modules a and b, a's output out1 routed to b's input in1."""
    return make_hub(modules={"a": {}, "b": {}}, routes={"ab": ROUTE_AB}, **kw)


def raw_connect(hub, module, clean=True, keepalive=60, will=None):
    """A raw MQTT connection the hub accepted for module; its
    session_present says whether the hub kept a session."""
    r = Raw(hub.socket)
    r.send(connect_packet("%s/%s" % (hub.device, module), username(hub.device, module),
                          hub.token(module), clean=clean, keepalive=keepalive, will=will))
    first, body = r.recv_packet()
    assert first == 0x20 and body[1] == 0, "CONNACK %r" % body
    r.session_present = bool(body[0] & 1)
    return r
