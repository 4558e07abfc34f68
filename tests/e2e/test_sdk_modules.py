"""Unmodified Azure IoT SDK modules under berth, as under IoT Edge: Node.js
modules built with the npm SDK (azure-iot-device, azure-iot-device-mqtt)
call ModuleClient.fromEnvironment(Mqtt), get the trust bundle and their
token signatures from the workload API, and connect with TLS to the
gateway name, which resolves inside each instance to where the hub
listens. One daemon serves every test of this file (the modules take a few
seconds to start); each test checks one behaviour.

The gateway listens on the ports the SDKs use, 8883 and 443: on a loopback
address of its own (127.66.0.1, hub.gateway.address) for the sender, on the
host's network, and on the bridge's address of the default network
(azure-iot-edge, a subnet of this daemon's own) for the receiver, on it as
modules are by default."""
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import urllib.parse

import pytest

from conftest import Berth, wait_for
from daemonlib import DEFAULT_NETWORK, HUB_HOST, Daemon, manifest, module
from helpers import recv_all
from sdk_image import push_node_sdk_image

GATEWAY = "gateway.berth.test"
GATEWAY_ADDR = "127.66.0.1"
SENDER, RECEIVER = "sender", "receiver"


@pytest.fixture(scope="session")
def sdk_image(registry, tmp_path_factory):
    return push_node_sdk_image(tmp_path_factory.mktemp("img-sdk"), registry)


def deployment(image, threshold=5):
    sender = module(image, create={"HostConfig": {"NetworkMode": "host"}}, env={
        "SEND_TO": "out", "SEND_MS": "300",
        # Would take precedence over IOTEDGE_* in the SDK if it reached the
        # module: berth drops it, so fromEnvironment uses the gateway.
        "EdgeHubConnectionString": "HostName=nowhere.invalid;DeviceId=x;ModuleId=y;"
                                   "SharedAccessKey=AAAA"})
    receiver = module(image, env={"TOKEN_SECS": "8"})
    return manifest({SENDER: sender, RECEIVER: receiver},
                    routes={"toReceiver": "FROM /messages/modules/sender/outputs/out "
                                          "INTO BrokeredEndpoint(\"/modules/receiver/inputs/in1\")"},
                    twins={RECEIVER: {"threshold": threshold}})


@pytest.fixture(scope="module")
def edge(berth_bin, registry, sdk_image, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdk")
    (tmp / "root").mkdir()
    (tmp / "run").mkdir()
    berth = Berth(berth_bin, str(tmp / "root"), str(tmp / "run"))
    d = Daemon(berth, tmp, registry=registry, deployment=deployment(sdk_image),
               hub={"enabled": True, "gateway": {"address": GATEWAY_ADDR}},
               gateway_hostname=GATEWAY).start()
    d.image = sdk_image
    try:
        for name in (SENDER, RECEIVER):
            d.wait_status(name, timeout=60)
            d.wait_log(name, "connected", timeout=60)
        yield d
    finally:
        try:
            d.deploy(manifest({}))
            d.terminate()
        finally:
            d.kill()
            subprocess.run(["sh", "-c", "grep -o ' %s[^ ]*' /proc/self/mounts | sort -r | "
                            "xargs -r -n1 umount -l" % tmp], check=False)


def hub_lines(d, pattern):
    return re.findall(pattern, d.log_text())


def gateway_peers(d, name):
    return [ipaddress.ip_address(a) for a in
            hub_lines(d, r"Hannover01/%s \(gateway ([0-9.]+):\d+\): connected" % name)]


def test_modules_connect_from_environment_through_the_tls_gateway(edge):
    # Both connected with TLS to the gateway (not the hub's Unix socket):
    # the sender from the host's loopback, the receiver from its address on
    # the bridge network, each to the address its gateway name resolves to.
    with open(edge.config_path) as f:
        subnet = ipaddress.ip_network(json.load(f)["networks"][DEFAULT_NETWORK]["subnet"])
    bridge_addr = str(next(subnet.hosts()))
    assert gateway_peers(edge, SENDER) and all(p.is_loopback for p in gateway_peers(edge, SENDER))
    assert gateway_peers(edge, RECEIVER) and all(p in subnet for p in gateway_peers(edge, RECEIVER))
    assert "EdgeHubConnectionString dropped from its environment" in edge.log_text()
    with open(os.path.join(edge.instance_dir(SENDER), "hosts")) as f:
        assert f.readline() == "%s\t%s\n" % (GATEWAY_ADDR, GATEWAY)
    with open(os.path.join(edge.instance_dir(RECEIVER), "hosts")) as f:
        hosts = f.read()
    assert re.findall(r"^(\S+)\s+%s$" % re.escape(GATEWAY), hosts, re.M) == [bridge_addr], hosts
    # The hub listens on both addresses, with the gateway's certificate.
    ctx = ssl.create_default_context(cafile=os.path.join(edge.berth.root, "ca", "edge-ca.pem"))
    for addr in (GATEWAY_ADDR, bridge_addr):
        with socket.create_connection((addr, 8883), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=GATEWAY) as s:
                assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_outputs_reach_another_modules_input_through_a_route(edge):
    m = edge.wait_log(RECEIVER, r'input in1 body \{"seq":(\d+)\} props (.*)', timeout=30)
    props = json.loads(m.group(2))
    assert {"key": "seq", "value": m.group(1)} in props, props


def test_twin_desired_properties_arrive_and_reported_ones_are_kept(edge):
    edge.wait_log(RECEIVER, r'twin desired \{"threshold":5,"\$metadata":')
    edge.deploy(deployment(edge.image, threshold=7))
    m = edge.wait_log(RECEIVER, r'desired patch \{"threshold":7,.*"\$version":(\d+)\}')
    version = int(m.group(1))

    def reported():
        twin = json.loads(edge.berth("twin", RECEIVER).stdout)
        return twin["reported"].get("seen") == version and twin["reported"]["module"] == RECEIVER
    wait_for(reported, 20, what="the reported properties")


def test_a_direct_method_from_berth_invoke(edge):
    out = edge.berth("invoke", RECEIVER, "echo", '{"x":1}').stdout
    assert json.loads(out) == {"echo": {"x": 1}, "from": RECEIVER}


def test_a_module_calls_another_modules_method_through_the_gateway(edge):
    out = edge.berth("invoke", SENDER, "call",
                     json.dumps({"target": RECEIVER, "method": "echo", "payload": {"n": 2}})).stdout
    assert json.loads(out) == {"result": {"status": 200,
                                          "payload": {"echo": {"n": 2}, "from": RECEIVER}}}
    assert hub_lines(edge, r"gateway https: module sender calls method echo on receiver")
    # A module that is not deployed: the caller's SDK hears 404 ("Not found").
    p = edge.berth("invoke", SENDER, "call",
                   json.dumps({"target": "nobody", "method": "echo", "payload": {}}), check=False)
    assert p.returncode == 1 and b"status 502" in p.stderr, p
    edge.wait_log(SENDER, "module-to-module call failed: Not found")


def test_inputs_keep_arriving_after_token_renewals(edge):
    # The receiver's tokens last 8 s and are renewed every 4 s: the SDK signs
    # a new one through the workload API and reconnects without subscribing
    # again, so its persistent session must keep the input subscription.
    pattern = r"Hannover01/receiver \(gateway [0-9.:]+\): connected \(persistent session resumed"
    wait_for(lambda: len(hub_lines(edge, pattern)) >= 2, 40, what="two token renewals")
    renewed_at = edge.module_log(RECEIVER).count("input in1")
    wait_for(lambda: edge.module_log(RECEIVER).count("input in1") > renewed_at + 5, 20,
             what="inputs after the renewals")
    assert "fromEnvironment failed" not in edge.module_log(RECEIVER)


def test_the_gateway_speaks_tls_12_and_13_with_its_chain(edge, tmp_path):
    bundle = os.path.join(edge.berth.root, "ca", "edge-ca.pem")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=bundle)
        ctx.minimum_version = ctx.maximum_version = version
        for port in (8883, 443):
            with socket.create_connection((GATEWAY_ADDR, port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=GATEWAY) as s:
                    assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                           ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    # The full chain is sent: a client trusting only the CA verifies it, and
    # a name that is not the gateway's is refused.
    out = subprocess.run(["openssl", "s_client", "-connect", "%s:8883" % GATEWAY_ADDR,
                          "-showcerts", "-servername", GATEWAY],
                         input=b"", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=10).stdout.decode()
    assert out.count("BEGIN CERTIFICATE") == 2, out
    ctx = ssl.create_default_context(cafile=bundle)
    with socket.create_connection((GATEWAY_ADDR, 8883), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="other.berth.test")


def https_method(caller, token, target="receiver", body=None):
    """A raw module-to-module request as the Node SDK sends it."""
    body = json.dumps(body or {"methodName": "echo", "payload": {"raw": True},
                               "responseTimeoutInSeconds": 5}).encode()
    req = ("POST /twins/Hannover01/modules/%s/methods HTTP/1.1\r\nContent-Type: "
           "application/json\r\nx-ms-edge-moduleId: Hannover01/%s\r\nAuthorization: %s\r\n"
           "Host: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
           % (target, caller, token, GATEWAY, len(body))).encode() + body
    return req


def https(edge, request):
    ctx = ssl.create_default_context(cafile=os.path.join(edge.berth.root, "ca", "edge-ca.pem"))
    with socket.create_connection((GATEWAY_ADDR, 443), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=GATEWAY) as s:
            s.sendall(request)
            out = recv_all(s)
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head and b"Content-Length: %d" % len(body) in head
    return int(head.split()[1]), json.loads(body)


def test_module_to_module_requests_need_the_callers_token(edge):
    token = edge.berth("token", SENDER).stdout.decode().strip()
    status, body = https(edge, https_method(SENDER, token))
    assert status == 200 and body == {"status": 200, "payload": {"echo": {"raw": True},
                                                                 "from": RECEIVER}}, body
    # The receiver's token presented as the sender's, a forged signature,
    # no token: 401, and the module never hears of it.
    other = edge.berth("token", RECEIVER).stdout.decode().strip()
    forged = re.sub(r"sig=[^&]+", "sig=" + urllib.parse.quote("A" * 43 + "="), token)
    for bad in (other, forged, ""):
        status, body = https(edge, https_method(SENDER, bad))
        assert status == 401 and body["status"] == 401, body
    status, body = https(edge, https_method(SENDER, token, target="nobody"))
    assert status == 404 and "not deployed" in body["message"], body


def test_the_gateway_certificate_is_the_edge_cas(edge, tmp_path):
    ca = os.path.join(edge.berth.root, "ca", "edge-ca.pem")
    gw = os.path.join(edge.berth.root, "ca", "gateway.pem")
    text = subprocess.run(["openssl", "x509", "-in", gw, "-noout", "-text"],
                          stdout=subprocess.PIPE, check=True).stdout.decode()
    assert "Subject: CN = %s" % GATEWAY in text and "DNS:%s" % GATEWAY in text
    subprocess.run(["openssl", "verify", "-CAfile", ca, gw], check=True,
                   stdout=subprocess.DEVNULL)
    # berth check sees the CA and the gateway.
    out = edge.berth("check", "--config", edge.config_path, check=False).stdout.decode()
    assert "edge CA %s (quickstart, renewed by berth) valid until" % ca in out, out
    assert "the gateway (MQTT with TLS) at %s:8883 is reachable" % GATEWAY_ADDR in out, out
    assert "IOTEDGE_IOTHUBHOSTNAME %s has the dot" % HUB_HOST in out, out
