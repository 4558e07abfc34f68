"""The optional TCP listener: TLS with the configured certificate (libssl
loaded only then), plain TCP without one; TCP clients need a valid token."""
import os
import queue
import ssl
import subprocess

import paho.mqtt.client as mqtt

from hubkit import make_hub, username  # noqa: F401
from conftest import free_port


def tcp_client(hub, module, token, port, ca=None):
    c = mqtt.Client(client_id="%s/%s" % (hub.device, module), protocol=mqtt.MQTTv311)
    c.username_pw_set(username(hub.device, module), token)
    if ca:
        c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    acks = queue.Queue()
    c.on_connect = lambda cl, u, f, rc: acks.put(rc)
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    rc = acks.get(timeout=10)
    c.loop_stop()
    c.disconnect()
    return rc


def self_signed(dirpath):
    key, cert = os.path.join(dirpath, "key.pem"), os.path.join(dirpath, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, cert


def test_tls_listener_accepts_a_module_with_a_valid_token(make_hub, tmp_path):
    key, cert = self_signed(str(tmp_path))
    port = free_port()
    hub = make_hub(modules={"a": {}}, extra={"listen_tcp": "127.0.0.1:%d" % port,
                                              "tls_cert": cert, "tls_key": key})
    hub.wait_log("listening on 127.0.0.1:%d with TLS" % port)
    assert tcp_client(hub, "a", hub.token("a"), port, ca=cert) == 0
    assert tcp_client(hub, "a", hub.token("a", ttl=-5), port, ca=cert) == 5
    hub.wait_log("(tls 127.0.0.1:")


def test_plain_tcp_without_a_certificate_still_needs_a_token(make_hub):
    port = free_port()
    hub = make_hub(modules={"a": {}}, extra={"listen_tcp": "127.0.0.1:%d" % port})
    hub.wait_log("without TLS")
    assert tcp_client(hub, "a", hub.token("a"), port) == 0
    assert tcp_client(hub, "a", "SharedAccessSignature sr=x&sig=y&se=9999999999", port) == 5


def test_tls_handshake_garbage_closes_only_that_connection(make_hub, tmp_path):
    key, cert = self_signed(str(tmp_path))
    port = free_port()
    hub = make_hub(modules={"a": {}}, extra={"listen_tcp": "127.0.0.1:%d" % port,
                                              "tls_cert": cert, "tls_key": key})
    import socket
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x10\x0cnot a TLS hello" * 4)
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    hub.wait_log("TLS handshake")
    assert tcp_client(hub, "a", hub.token("a"), port, ca=cert) == 0
