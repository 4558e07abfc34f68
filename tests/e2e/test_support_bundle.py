"""berth support-bundle: one .tar.gz with the daemon's and each module's logs,
check, list --json, queues --json, the config and the deployment redacted,
kernel and cgroup facts; and no secret of the config or the deployment in
any file of it, even when a module prints its secrets to its log."""
import io
import json
import os
import tarfile
import urllib.parse

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import DEVICE_KEY, manifest, module, unique

SECRETS = {
    "registry_password": "RegistryPass-7f3a9c",
    "deployment_registry_password": "AcrPassword-0b12e4",
    "api_key": "env-api-key-91c2d7",
    "db_password": "env-db-pass-55e0aa",
    "connection_string_key": "c2VjcmV0LWNvbm5lY3Rpb24ta2V5LTQyNDI=",
    "create_options_token": "opt-token-3d8e21",
    "twin_secret": "twin-secret-6b0c4f",
}


def deployment(image, name):
    conn = ("HostName=myhub.example.net;DeviceId=Hannover01;ModuleId=%s;SharedAccessKey=%s"
            % (name, SECRETS["connection_string_key"]))
    # The module prints its whole environment, then one line of its own.
    m = module(image, ["/bin/sh", "-c", "env; echo token=$SERVICE_TOKEN; "
                                        "echo hello-from-the-module; exec sleep 1000"],
               env={"API_KEY": SECRETS["api_key"], "DB_PASSWORD": SECRETS["db_password"],
                    "IOTHUB_CONNECTION_STRING": conn},
               create={"Env": ["SERVICE_TOKEN=" + SECRETS["create_options_token"],
                               "LOG_LEVEL=debug"]})
    dep = manifest({name: m}, twins={name: {"apiKey": SECRETS["twin_secret"], "rate": 5}})
    agent = dep["modulesContent"]["$edgeAgent"]["properties.desired"]
    agent["runtime"]["settings"]["registryCredentials"] = {
        "acr": {"address": "myacr.example.io", "username": "acr-user",
                "password": SECRETS["deployment_registry_password"]}}
    return dep


def forms(secret):
    return {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}


def test_the_bundle_holds_what_it_says_and_no_secret(daemons, image, tmp_path):
    name = unique("leaky")
    d = daemons(deployment(image, name), hub=True)
    with open(d.config_path) as f:
        cfg = json.load(f)
    cfg["registries"]["myacr.example.io"] = {"username": "u",
                                             "password": SECRETS["registry_password"]}
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.start()
    d.wait_status(name)
    secrets = dict(SECRETS, device_key=DEVICE_KEY)
    # The control: the secrets are really there, in the config, the
    # deployment and the module's log.
    raw_logs = ""
    for _ in range(50):
        raw_logs = d.berth("logs", name).stdout.decode()
        if "hello-from-the-module" in raw_logs:
            break
        __import__("time").sleep(0.1)
    assert SECRETS["api_key"] in raw_logs and SECRETS["create_options_token"] in raw_logs
    assert SECRETS["connection_string_key"] in raw_logs
    assert DEVICE_KEY in open(d.config_path).read()
    assert SECRETS["registry_password"] in open(d.config_path).read()

    out = str(tmp_path / "bundle.tar.gz")
    p = d.berth("support-bundle", "--config", d.config_path, "--since", "10m",
                "--daemon-log", d.log_path, "-o", out)
    assert "support bundle written to" in p.stderr.decode()
    assert os.stat(out).st_mode & 0o077 == 0
    with tarfile.open(out, "r:gz") as t:
        files = {}
        for m in t.getmembers():
            assert m.isfile(), m.name
            top, rel = m.name.split("/", 1)
            assert top.startswith("berth-support-bundle-")
            files[rel] = t.extractfile(m).read()

    # No secret, in any form, anywhere.
    for rel, data in files.items():
        text = data.decode(errors="replace")
        for what, secret in secrets.items():
            for form in forms(secret):
                assert form not in text, "%s (%s) in %s" % (what, form, rel)

    # What it holds.
    log = files["logs/%s.log" % name].decode()
    assert "hello-from-the-module" in log
    assert "API_KEY=<redacted>" in log, log
    assert "IOTHUB_CONNECTION_STRING=<redacted>" in log, log
    assert log.split("\n")[0][:4].isdigit()  # with timestamps
    assert "LOG_LEVEL=debug" in log  # what is no secret stays
    assert "ready: device Hannover01" in files["logs/daemon.log"].decode()
    listed = json.loads(files["list.json"])
    assert [m["name"] for m in listed] == [name]
    queues = json.loads(files["queues.json"])
    assert "queues" in queues
    assert "config %s is valid" % d.config_path in files["check.txt"].decode()
    assert "berth" in files["version.txt"].decode()
    config = json.loads(files["config.json"])
    assert config["device_id"] == "Hannover01"
    assert config["device_key"] == "<redacted>"
    assert config["registries"]["myacr.example.io"]["password"] == "<redacted>"
    dep = json.loads(files["deployment.json"])
    mod = dep["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"][name]
    assert mod["settings"]["image"] == image
    assert mod["env"]["API_KEY"]["value"] == "<redacted>"
    assert "LOG_LEVEL=debug" in mod["settings"]["createOptions"]
    assert dep["modulesContent"][name]["properties.desired"]["rate"] == 5
    assert os.uname().release in files["host/uname-and-disks.txt"].decode()
    assert b"memory" in files["host/proc-cgroups"]
    assert b"cgroup" in files["host/mountinfo"]
    assert b"MemTotal" in files["host/meminfo"]


def test_without_a_daemon_the_bundle_still_comes_and_says_why(berth, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"device_id": "Hannover01", "iothub_hostname": "h.example.net",
                               "device_key": DEVICE_KEY}))
    out = str(tmp_path / "b.tar.gz")
    berth("support-bundle", "--config", str(cfg), "--daemon-log", str(tmp_path / "none"),
          "-o", out)
    with tarfile.open(out, "r:gz") as t:
        files = {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t.getmembers()}
    assert b"exit status" in files["list.json"]
    assert b"exit status" in files["queues.json"]
    assert json.loads(files["config.json"])["device_key"] == "<redacted>"
    assert all(DEVICE_KEY.encode() not in v for v in files.values())
    assert b"No such file" in files["logs/daemon.log"]
    assert io.BytesIO(files["host/proc-version"]).read().startswith(b"Linux")
