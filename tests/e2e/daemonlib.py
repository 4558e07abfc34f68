"""Helpers for the daemon's end-to-end tests: a daemon process with its own
state and runtime directories, deployment manifests built from Python, and
observations of modules from outside (list --json, cgroups, files)."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import urllib.parse
import uuid

from helpers import (DEVICE_KEY, IOTHUB_HOSTNAME, cgroup_pids, free_subnets,  # noqa: F401
                     instance_cgroups, kill_module, module_key, mounts_mentioning, unique,
                     unstamped, wait_for)

HUB_HOST = IOTHUB_HOSTNAME
DEFAULT_NETWORK = "azure-iot-edge"


def module(image, cmd=None, env=None, create=None, status="running", restart="always",
           order=None, pull="on-create"):
    opts = dict(create or {})
    if cmd is not None:
        opts["Cmd"] = cmd
    opts.setdefault("StopTimeout", 1)
    m = {"type": "docker", "status": status, "restartPolicy": restart,
         "imagePullPolicy": pull,
         "settings": {"image": image, "createOptions": json.dumps(opts)}}
    if env:
        m["env"] = {k: {"value": v} for k, v in env.items()}
    if order is not None:
        m["startupOrder"] = order
    return m


def manifest(modules, routes=None, twins=None, ttl=7200):
    content = {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "docker", "settings": {"image": "x"}},
                              "edgeHub": {"type": "docker", "settings": {"image": "x"}}},
            "modules": modules}},
        "$edgeHub": {"properties.desired": {
            "schemaVersion": "1.1", "routes": routes or {},
            "storeAndForwardConfiguration": {"timeToLiveSecs": ttl}}}}
    for name, desired in (twins or {}).items():
        content[name] = {"properties.desired": desired}
    return {"modulesContent": content}


class Daemon:
    """`berth daemon` with a config in tmp; the berth fixture's --root/--run."""

    def __init__(self, berth, tmp, registry=None, deployment=None, hub=False, **options):
        self.berth = berth
        self.tmp = str(tmp)
        self.config_path = os.path.join(self.tmp, "config.json")
        self.deployment_path = os.path.join(self.tmp, "deployment.json")
        self.log_path = os.path.join(self.tmp, "daemon.log")
        cfg = {"device_id": "Hannover01", "iothub_hostname": HUB_HOST,
               "device_key": DEVICE_KEY, "restart_backoff_unit_ms": 200,
               "reconcile_interval_ms": 500, "stop_grace_secs": 1,
               "hub": hub if isinstance(hub, dict) else {"enabled": bool(hub)},
               # Modules are on the default bridge network (azure-iot-edge),
               # with a subnet and a bridge of this daemon's own.
               "networks": {DEFAULT_NETWORK: {"subnet": str(free_subnets(1)[0]),
                                              "bridge": "bt-" + os.urandom(4).hex()}}}
        if registry is not None:
            cfg["registries"] = {registry.host: {"insecure": True}}
        if deployment is not None:
            self.write_deployment(deployment)
            cfg["deployment_file"] = self.deployment_path
        cfg.update(options)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.proc = None
        self.log = None

    def set_options(self, **options):
        """Changes the config (read at the next start)."""
        with open(self.config_path) as f:
            cfg = json.load(f)
        cfg.update(options)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)

    def write_deployment(self, dep):
        with open(self.deployment_path, "w") as f:
            f.write(dep if isinstance(dep, str) else json.dumps(dep))

    def start(self, env=None, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.berth.cmd("daemon", "--config", self.config_path),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            sock = os.path.join(self.berth.run_dir, "berthd.sock")
            wait_for(lambda: self._answers(sock), 15, what="berth daemon socket")
        return self

    def _answers(self, sock):
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %s:\n%s" % (self.proc.returncode,
                                                                 self.log_text()))
        return os.path.exists(sock) and self.berth("version", check=False).stdout.count(b"\n") == 2

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def terminate(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        if self.log:
            self.log.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log:
            self.log.close()

    def deploy(self, dep, check=True):
        path = os.path.join(self.tmp, "deploy-%s.json" % uuid.uuid4().hex[:6])
        with open(path, "w") as f:
            f.write(dep if isinstance(dep, str) else json.dumps(dep))
        return self.berth("deploy", path, check=check)

    def modules(self):
        out = self.berth("list", "--json").stdout
        return {m["name"]: m for m in json.loads(out)}

    def module(self, name):
        return self.modules().get(name)

    def wait_status(self, name, status="running", timeout=30, **fields):
        def ok():
            m = self.module(name)
            return m is not None and m["runtimeStatus"] == status and all(
                m.get(k) == v for k, v in fields.items())
        try:
            wait_for(ok, timeout, interval=0.1, what="%s %s %s" % (name, status, fields))
        except TimeoutError:
            raise AssertionError("module %s: %s\ndaemon log:\n%s" % (
                name, self.module(name), self.log_text()))
        return self.module(name)

    def wait_gone(self, name, timeout=30):
        wait_for(lambda: self.module(name) is None, timeout, interval=0.1,
                 what="module %s removed" % name)

    def instance_dir(self, name):
        return os.path.join(self.berth.root, "instances", name)

    def wait_log(self, name, pattern, timeout=20):
        """Waits until the module's log matches; returns the match."""
        rx = re.compile(pattern)
        found = []

        def ok():
            text = self.module_log(name)
            m = rx.search(text)
            if m:
                found.append(m)
            return bool(m)
        try:
            wait_for(ok, timeout, interval=0.1, what="log of %s matching %s" % (name, pattern))
        except TimeoutError:
            raise AssertionError("log of %s:\n%s\ndaemon log:\n%s" % (
                name, self.module_log(name), self.log_text()))
        return found[0]

    def module_log(self, name):
        text = b""
        for f in ("log.1", "log"):
            p = os.path.join(self.instance_dir(name), f)
            if os.path.exists(p):
                with open(p, "rb") as fh:
                    text += fh.read()
        return unstamped(text.decode(errors="replace"))


def sas_verify(token, key_b64, resource):
    assert token.startswith("SharedAccessSignature "), token
    fields = dict(kv.split("=", 1) for kv in token[len("SharedAccessSignature "):].split("&"))
    sr, se = fields["sr"], fields["se"]
    assert urllib.parse.unquote(sr) == resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), ("%s\n%s" % (sr, se)).encode(),
                                    hashlib.sha256).digest()).decode()
    assert urllib.parse.unquote(fields["sig"]) == sig, "signature does not verify"
    return int(se)
