"""Registry auth and transport: Bearer tokens from the WWW-Authenticate
challenge, Basic auth, credentials from the command line or the daemon
config, HTTPS with an extra CA, plain HTTP only when insecure."""
import json
import os
import subprocess
from urllib.parse import parse_qs, urlparse

import pytest

import images
from conftest import Registry
from helpers import push
from images import Layer, file
from registry_fixtures import htpasswd_line, make_ca_and_cert


def three_layer_image(tmp_path, registry, repo):
    layers = [Layer([file("l%d" % i, os.urandom(50000))]) for i in range(3)]
    push(tmp_path, registry, repo, layers)
    return layers


def test_bearer_token_is_fetched_once_for_the_whole_pull(berth, registry, front, tmp_path):
    three_layer_image(tmp_path, registry, "tok")
    front.require_bearer()
    berth("pull", "--insecure", front.host + "/tok:1")
    assert len(front.token_requests) == 1
    q = parse_qs(urlparse(front.token_requests[0].path).query)
    assert q["service"] == ["berth-test"]
    assert q["scope"] == ["repository:tok:pull"]
    assert front.token_requests[0].header("Authorization") is None  # anonymous


def test_bearer_token_service_gets_basic_credentials(berth, registry, front, tmp_path):
    three_layer_image(tmp_path, registry, "tokcred")
    front.require_bearer(user="edge", password="s3cret")
    berth("pull", "--insecure", "--username", "edge", "--password", "s3cret",
          front.host + "/tokcred:1")
    assert front.token_requests[-1].header("Authorization").startswith("Basic ")


def test_token_service_refusing_anonymous_access_is_a_clear_error(berth, registry, front,
                                                                   tmp_path):
    three_layer_image(tmp_path, registry, "tokanon")
    front.require_bearer(user="edge", password="s3cret")
    ref = front.host + "/tokanon:1"
    p = berth("pull", "--insecure", ref, check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.count("\n") == 1 and ref in err and "refused anonymous access" in err
    assert os.listdir(os.path.join(berth.root, "oci", "refs")) == []
    berth("pull", "--insecure", "--username", "edge", "--password", "s3cret", ref)
    assert os.listdir(os.path.join(berth.root, "oci", "refs")) != []


def test_expired_token_is_renewed(berth, registry, front, tmp_path):
    layers = [Layer([file("e%d" % i, os.urandom(300000))]) for i in range(5)]
    images.push_image(tmp_path, registry.host, "expiry", "1", layers)
    front.require_bearer(expires_in=1)
    for l in layers[:3]:
        front.slow_blob(l.digest, chunk=65536, delay=0.3)
    berth("pull", "--insecure", front.host + "/expiry:1")
    assert len(front.token_requests) >= 2


def test_credentials_come_from_the_daemon_config(berth, registry, front, tmp_path):
    three_layer_image(tmp_path, registry, "cfgcred")
    front.require_bearer(user="edge", password="fromconfig")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"device_id": "d", "registries": {
        front.host: {"insecure": True, "username": "edge", "password": "fromconfig"}}}))
    berth("pull", "--config", str(cfg), front.host + "/cfgcred:1")
    assert front.token_requests[-1].header("Authorization").startswith("Basic ")


def test_plain_http_needs_insecure(berth, busybox_image):
    p = berth("pull", "--timeout", "5", busybox_image["ref"], check=False)
    assert p.returncode == 1
    assert busybox_image["ref"] in p.stderr.decode()
    berth("pull", "--insecure", busybox_image["ref"])


@pytest.fixture(scope="module")
def basic_registry(registry, tmp_path_factory):
    d = tmp_path_factory.mktemp("basic-registry")
    pw = d / "htpasswd"
    pw.write_text(htpasswd_line("edge", "hunter2"))
    r = Registry(str(d), "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n" % pw)
    layout = str(d / "layout")
    images.OCILayout(layout).add_image([Layer([file("basic", "yes")])], tag="1")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    "--dest-creds", "edge:hunter2", "oci:%s:1" % layout,
                    "docker://%s/basic:1" % r.host], check=True, stdout=subprocess.DEVNULL)
    yield r
    r.stop()


def test_basic_auth_asks_for_credentials_refuses_wrong_ones_and_takes_the_right_ones(
        berth, basic_registry):
    ref = basic_registry.host + "/basic:1"
    p = berth("pull", "--insecure", ref, check=False)
    assert p.returncode == 1
    assert "requires a login" in p.stderr.decode()
    p = berth("pull", "--insecure", "--username", "edge", "--password", "wrong", ref, check=False)
    assert p.returncode == 1
    assert "refused the credentials" in p.stderr.decode()
    berth("pull", "--insecure", "--username", "edge", "--password", "hunter2", ref)
    img = json.loads(berth("inspect", ref).stdout)
    with open(os.path.join(img["layers"][0], "basic")) as f:
        assert f.read() == "yes"


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-registry")
    ca, crt, key = make_ca_and_cert(d)
    r = Registry(str(d), "  tls:\n    certificate: %s\n    key: %s\n" % (crt, key))
    layout = str(d / "layout")
    images.OCILayout(layout).add_image([Layer([file("tls", "yes")])], tag="1")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    "oci:%s:1" % layout, "docker://%s/tls:1" % r.host],
                   check=True, stdout=subprocess.DEVNULL)
    r.ca = ca
    yield r
    r.stop()


def test_https_with_an_unknown_ca_is_refused_and_with_the_registry_ca_file_taken(
        berth, tls_registry):
    p = berth("pull", tls_registry.host + "/tls:1", check=False)
    assert p.returncode == 1
    assert "certificate" in p.stderr.decode().lower()
    berth("pull", "--ca-file", tls_registry.ca, tls_registry.host + "/tls:1")


def test_ca_file_from_the_daemon_config(berth, tls_registry, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"registries": {tls_registry.host: {"ca_file": tls_registry.ca}}}))
    berth("pull", "--config", str(cfg), tls_registry.host + "/tls:1")


def test_insecure_accepts_https_without_checking_the_certificate(berth, tls_registry):
    berth("pull", "--insecure", tls_registry.host + "/tls:1")


def test_password_from_standard_input(berth, registry, front, tmp_path):
    three_layer_image(tmp_path, registry, "stdinpw")
    front.require_bearer(user="edge", password="piped")
    berth("pull", "--insecure", "--username", "edge", "--password-stdin",
          front.host + "/stdinpw:1", input=b"piped\n")
    assert front.token_requests[-1].header("Authorization").startswith("Basic ")
