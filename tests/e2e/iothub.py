"""The local stand-in for Azure IoT Hub (tests/iothub/server.js), from Python.

`IotHubStandin` starts it on free loopback ports with a CA of its own, waits
until it listens, offers IoT Hub's service calls (identities, twins,
deployments, direct methods) and the stand-in's test-only reads (received
telemetry, connected clients), and stops it. `HubClient` is a paho-mqtt client
speaking IoT Hub's device dialect. The `iothub` fixture gives a running
stand-in per test. See tests/iothub/README.md for what each call follows.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import queue
import signal
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER_DIR = os.path.join(TOP, "tests", "iothub")
SERVER = os.path.join(SERVER_DIR, "server.js")
HOSTNAME = "standin.azure-devices.net"
API_VERSION = "2021-04-12"


def new_key():
    return base64.b64encode(os.urandom(32)).decode()


def sas_token(resource, key_b64, ttl=3600, policy=None, expiry=None):
    """SharedAccessSignature sr=<urlenc(resource)>&sig=<urlenc(b64 hmac)>&se=<expiry>[&skn=]"""
    se = int(time.time()) + ttl if expiry is None else int(expiry)
    sr = urllib.parse.quote(resource, safe="")
    mac = hmac.new(base64.b64decode(key_b64), ("%s\n%d" % (sr, se)).encode(), hashlib.sha256)
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%d" % (
        sr, urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe=""), se)
    return tok + ("&skn=" + policy if policy else "")


class IotHubError(Exception):
    """A non-2xx answer of the REST API: .status, .code (IoT Hub's ErrorCode), .body."""

    def __init__(self, method, path, status, body, code):
        super().__init__("%s %s -> %d %s: %s" % (method, path, status, code, body))
        self.status, self.body, self.code = status, body, code


class Response:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        """IoT Hub's error code (iothub-errorcode header), or None."""
        return self.headers.get("iothub-errorcode")


class IotHubStandin:
    """One stand-in process. Attributes once started: hostname, host, mqtt_port,
    mqtts_port, https_port, ca_file, service_key, rest_url, log_path."""

    def __init__(self, workdir, hostname=HOSTNAME, host="127.0.0.1", san=(), sas_skew=300,
                 plain_mqtt=True):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.hostname, self.host, self.san, self.sas_skew = hostname, host, list(san), sas_skew
        self.plain_mqtt = plain_mqtt
        self.proc = None
        self.mqtt_port = self.mqtts_port = self.https_port = None
        self.log_path = os.path.join(self.workdir, "iothub.log")
        self.certs_dir = os.path.join(self.workdir, "certs")
        self.ca_file = os.path.join(self.certs_dir, "ca.pem")
        self.service_key = None

    # -- process ------------------------------------------------------------
    def start(self, timeout=20):
        """Starts the stand-in (again, after stop(): same ports, CA, service key,
        identities, twins and received telemetry)."""
        if not os.path.isdir(os.path.join(SERVER_DIR, "node_modules", "aedes")):
            raise RuntimeError("tests/iothub/node_modules is missing: run tests/install-deps.sh "
                               "(npm ci in tests/iothub)")
        args = ["node", SERVER, "--hostname", self.hostname, "--host", self.host,
                "--certs", self.certs_dir, "--state", os.path.join(self.workdir, "state.json"),
                "--telemetry-log", os.path.join(self.workdir, "telemetry.jsonl"),
                "--sas-skew", str(self.sas_skew),
                "--mqtt-port", str(self.mqtt_port or 0) if self.plain_mqtt else "-1",
                "--mqtts-port", str(self.mqtts_port or 0),
                "--https-port", str(self.https_port or 0)]
        for s in self.san:
            args += ["--san", s]
        if self.service_key:
            args += ["--service-key", self.service_key]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, cwd=SERVER_DIR)
        log.close()
        line = _readline(self.proc.stdout, timeout)
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("IoT Hub stand-in did not start; its log:\n" + self.log())
        info = json.loads(line)
        self.mqtt_port, self.mqtts_port = info.get("mqttPort"), info["mqttsPort"]
        self.https_port, self.service_key = info["httpsPort"], info["serviceKey"]
        self.ca_file = info["caFile"]
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    @property
    def rest_url(self):
        return "https://%s:%d" % (self.host, self.https_port)

    @property
    def mqtt_url(self):
        return "mqtt://%s:%d" % (self.host, self.mqtt_port)

    @property
    def mqtts_url(self):
        return "mqtts://%s:%d" % (self.host, self.mqtts_port)

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    # -- tokens -------------------------------------------------------------
    def service_token(self, ttl=3600, policy="iothubowner", key=None):
        return sas_token(self.hostname, key or self.service_key, ttl, policy=policy)

    def device_token(self, device_id, key, ttl=3600):
        return sas_token("%s/devices/%s" % (self.hostname, device_id), key, ttl)

    def module_token(self, device_id, module_id, key, ttl=3600):
        return sas_token("%s/devices/%s/modules/%s" % (self.hostname, device_id, module_id),
                         key, ttl)

    def username(self, device_id, module_id=None, api_version=API_VERSION):
        ident = device_id + ("/" + module_id if module_id else "")
        return "%s/%s/?api-version=%s" % (self.hostname, ident, api_version)

    def connection_string(self, device_id, module_id=None, key=None):
        """For the Azure IoT SDKs: GatewayHostName points them at this stand-in's TLS port."""
        key = key or (self.get_module(device_id, module_id) if module_id else
                      self.get_device(device_id))["authentication"]["symmetricKey"]["primaryKey"]
        cs = "HostName=%s;DeviceId=%s;" % (self.hostname, device_id)
        if module_id:
            cs += "ModuleId=%s;" % module_id
        return cs + "SharedAccessKey=%s;GatewayHostName=localhost:%d" % (key, self.mqtts_port)

    # -- REST ---------------------------------------------------------------
    def request(self, method, path, body=None, token=None, headers=None, api_version=API_VERSION,
                timeout=30):
        """One HTTPS call; returns a Response whatever its status. token=None uses
        the iothubowner policy; token="" sends no Authorization."""
        if api_version:
            path += ("&" if "?" in path else "?") + "api-version=" + api_version
        h = dict(headers or {})
        tok = self.service_token() if token is None else token
        if tok:
            h["Authorization"] = tok
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json; charset=utf-8")
        conn = http.client.HTTPSConnection(self.host, self.https_port, timeout=timeout,
                                           context=self.ssl_context())
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def call(self, method, path, body=None, ok=(200, 204), **kw):
        r = self.request(method, path, body, **kw)
        if r.status not in ok:
            raise IotHubError(method, path, r.status, r.raw.decode(errors="replace"), r.code)
        return r.json

    @staticmethod
    def _auth(primary_key, secondary_key):
        if primary_key is None:
            return {"type": "sas"}
        return {"type": "sas", "symmetricKey": {"primaryKey": primary_key,
                                                "secondaryKey": secondary_key or new_key()}}

    def create_device(self, device_id, edge=False, primary_key=None, secondary_key=None):
        """PUT /devices/<d>: a device (IoT Edge capable with edge=True, which gives it
        $edgeAgent and $edgeHub); keys are made by the hub unless given."""
        q = urllib.parse.quote
        return self.call("PUT", "/devices/" + q(device_id, safe=""), {
            "deviceId": device_id, "capabilities": {"iotEdge": edge},
            "authentication": self._auth(primary_key, secondary_key)})

    def get_device(self, device_id):
        return self.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))

    def delete_device(self, device_id):
        self.call("DELETE", "/devices/" + urllib.parse.quote(device_id, safe=""),
                  headers={"If-Match": "*"})

    def device_key(self, device_id):
        return self.get_device(device_id)["authentication"]["symmetricKey"]["primaryKey"]

    def _module_path(self, device_id, module_id=None):
        q = urllib.parse.quote
        return "/devices/%s/modules" % q(device_id, safe="") + (
            "/" + q(module_id, safe="") if module_id is not None else "")

    def create_module(self, device_id, module_id, primary_key=None, secondary_key=None,
                      managed_by=None):
        body = {"deviceId": device_id, "moduleId": module_id,
                "authentication": self._auth(primary_key, secondary_key)}
        if managed_by is not None:
            body["managedBy"] = managed_by
        return self.call("PUT", self._module_path(device_id, module_id), body)

    def get_module(self, device_id, module_id):
        return self.call("GET", self._module_path(device_id, module_id))

    def module_key(self, device_id, module_id):
        return self.get_module(device_id, module_id)["authentication"]["symmetricKey"]["primaryKey"]

    def list_modules(self, device_id):
        return self.call("GET", self._module_path(device_id))

    def delete_module(self, device_id, module_id):
        self.call("DELETE", self._module_path(device_id, module_id), headers={"If-Match": "*"})

    def _twin_path(self, device_id, module_id=None):
        q = urllib.parse.quote
        return "/twins/" + q(device_id, safe="") + (
            "/modules/" + q(module_id, safe="") if module_id else "")

    def get_twin(self, device_id, module_id=None):
        """GET /twins/<d>[/modules/<m>]: the whole twin, properties with $metadata."""
        return self.call("GET", self._twin_path(device_id, module_id))

    def patch_twin(self, device_id, module_id=None, desired=None, tags=None, etag="*"):
        """PATCH the twin's desired properties and tags (a merge patch, null deletes);
        the connected identity gets the desired patch pushed."""
        body = {}
        if desired is not None:
            body["properties"] = {"desired": desired}
        if tags is not None:
            body["tags"] = tags
        return self.call("PATCH", self._twin_path(device_id, module_id), body,
                         headers={"If-Match": etag} if etag else None)

    def patch_twin_silently(self, device_id, module_id=None, desired=None):
        """Test-only: stores a desired patch without pushing it (a $version gap)."""
        return self.call("PATCH", "/_standin" + self._twin_path(device_id, module_id),
                         {"properties": {"desired": desired}}, api_version=None)

    def apply_configuration(self, device_id, modules_content):
        """POST /devices/<d>/applyConfigurationContent, as `az iot edge set-modules`."""
        if "modulesContent" in modules_content:
            modules_content = modules_content["modulesContent"]
        self.call("POST", "/devices/%s/applyConfigurationContent" % urllib.parse.quote(
            device_id, safe=""), {"modulesContent": modules_content})

    def invoke_method(self, device_id, module_id=None, method_name="", payload=None,
                      response_timeout=30, connect_timeout=0):
        """Direct method: returns (http_status, body); body is {"status", "payload"}
        on 200, IoT Hub's error body otherwise (404 not connected, 504 no answer)."""
        r = self.request("POST", self._twin_path(device_id, module_id) + "/methods", {
            "methodName": method_name, "payload": payload,
            "responseTimeoutInSeconds": response_timeout,
            "connectTimeoutInSeconds": connect_timeout},
            timeout=response_timeout + connect_timeout + 30)
        return r.status, r.json

    # -- test-only reads ----------------------------------------------------
    def telemetry(self, device_id=None, module_id=None, after=0):
        """Messages received (oldest first) as dicts: seq, deviceId, moduleId, topic,
        enqueuedTimeUtc, systemProperties, properties, body (bytes)."""
        out = []
        while True:
            q = {"after": after, "limit": 10000}
            if device_id is not None:
                q["deviceId"] = device_id
            if module_id is not None:
                q["moduleId"] = module_id
            page = self.call("GET", "/_standin/telemetry?" + urllib.parse.urlencode(q),
                             api_version=None)["messages"]
            for m in page:
                m["body"] = base64.b64decode(m["body"])
            out += page
            if len(page) < 10000:
                return out
            after = page[-1]["seq"]

    def wait_telemetry(self, count, device_id=None, module_id=None, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.telemetry(device_id, module_id)
            if len(msgs) >= count or time.monotonic() > deadline:
                return msgs
            time.sleep(0.05)

    def clear_telemetry(self):
        self.call("DELETE", "/_standin/telemetry", api_version=None)

    def clients(self):
        """Connected MQTT clients: clientId, deviceId, moduleId, clean, subscriptions,
        tokenExpiry."""
        return self.call("GET", "/_standin/clients", api_version=None)

    def disconnect(self, client_id):
        """Closes an identity's connection, as IoT Hub may at any time."""
        self.call("DELETE", "/_standin/clients/" + urllib.parse.quote(client_id, safe=""),
                  api_version=None)


def _readline(pipe, timeout):
    out = []
    t = threading.Thread(target=lambda: out.append(pipe.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0].decode() if out and out[0] else None


class HubClient:
    """paho-mqtt as an IoT Hub device (module_id=None) or module. connect() returns
    the CONNACK code; received messages queue up in .messages as (topic, payload)."""

    def __init__(self, hub, device_id, module_id=None, key=None, token=None, tls=True,
                 clean=False, client_id=None, username=None, keepalive=60):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.hub = hub
        ident = device_id + ("/" + module_id if module_id else "")
        if token is None and key is not None:
            token = (hub.module_token(device_id, module_id, key) if module_id
                     else hub.device_token(device_id, key))
        self.client = mqtt.Client(client_id=client_id if client_id is not None else ident,
                                  clean_session=clean, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username if username is not None else
                                    hub.username(device_id, module_id), token)
        self.tls = tls
        if tls:
            self.client.tls_set_context(hub.ssl_context())
        self.client.reconnect_delay_set(60, 60)
        self.keepalive = keepalive
        self.connack = queue.Queue()
        self.messages = queue.Queue()
        self.closed = threading.Event()
        self.acks = {}
        self.rid = 0
        self.client.on_connect = lambda c, u, f, rc: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda c, u, mid, granted: self._acked(mid, granted)
        self.client.on_publish = lambda c, u, mid: self._acked(mid, True)

    def _on_disconnect(self, client, userdata, rc):
        self.closed.set()
        # No reconnecting: a test that wants another connection makes one.
        client.disconnect()

    def connect(self, timeout=10):
        """The CONNACK return code (None when none came); the network loop runs
        in a thread from then on when the connection was accepted."""
        self.closed.clear()
        port = self.hub.mqtts_port if self.tls else self.hub.mqtt_port
        self.client.connect(self.hub.host, port, keepalive=self.keepalive)
        deadline = time.monotonic() + timeout
        while self.connack.empty() and time.monotonic() < deadline:
            if self.client.loop(0.05) not in (0, None) and self.connack.empty():
                return None
        if self.connack.empty():
            return None
        rc = self.connack.get()
        if rc == 0:
            self.client.loop_start()
        return rc

    def _acked(self, mid, value):
        self.acks.setdefault(mid, queue.Queue()).put(value)

    def _ack(self, mid, timeout):
        try:
            return self.acks.setdefault(mid, queue.Queue()).get(timeout=timeout)
        except queue.Empty:
            return None

    def subscribe(self, topic, qos=0, timeout=5):
        """Returns the granted QoS list of the SUBACK (128 = refused)."""
        rc, mid = self.client.subscribe(topic, qos)
        return self._ack(mid, timeout)

    def publish(self, topic, payload=b"", qos=1, timeout=5, retain=False):
        """True once acknowledged (QoS 1) or written (QoS 0); None on timeout."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return self._ack(info.mid, timeout)

    def get(self, prefix="", timeout=5):
        """The next message whose topic starts with prefix (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                topic, payload = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if topic.startswith(prefix):
                return topic, payload

    def twin_get(self, timeout=5):
        """(status, body) of a twin GET; needs a subscription to $iothub/twin/res/#."""
        self.rid += 1
        self.publish("$iothub/twin/GET/?$rid=%d" % self.rid, b"", qos=0)
        got = self.get("$iothub/twin/res/", timeout)
        if got is None:
            return None, None
        status = int(got[0].split("/")[3])
        return status, (json.loads(got[1]) if got[1] else None)

    def twin_report(self, patch, timeout=5):
        """(status, response topic) of a reported-properties patch."""
        self.rid += 1
        data = patch if isinstance(patch, (bytes, str)) else json.dumps(patch)
        self.publish("$iothub/twin/PATCH/properties/reported/?$rid=%d" % self.rid, data, qos=0)
        got = self.get("$iothub/twin/res/", timeout)
        if got is None:
            return None, None
        return int(got[0].split("/")[3]), got[0]

    def wait_closed(self, timeout=5):
        return self.closed.wait(timeout)

    def close(self):
        self.client.disconnect()
        if self.client._thread is not None:
            self.client.loop_stop()


@pytest.fixture
def iothub(tmp_path):
    """A running IoT Hub stand-in for one test (IotHubStandin)."""
    hub = IotHubStandin(tmp_path / "iothub").start()
    yield hub
    hub.stop()
