"""Every way a pull can fail, seen as a user sees it: a non-zero exit, one
line on stderr naming the image and the cause, nothing on stdout, and a
store exactly as it was before (an image pulled earlier stays intact, and
nothing new appears anywhere under <root>/oci)."""
import hashlib
import json
import os
import stat

import pytest

import images
from helpers import push
from images import Layer, file


def store_listing(root):
    """Every entry under <root>/oci with its type, mode, owner, size, inode
    and (for non-directories) mtime: directories' own times are left out,
    since a pull's work directory comes and goes in tmp/."""
    top = os.path.join(root, "oci")
    out = []
    for d, dirs, files in os.walk(top):
        for name in sorted(dirs) + sorted(files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            entry = (os.path.relpath(p, top), stat.S_IFMT(st.st_mode), st.st_mode, st.st_uid,
                     st.st_gid, st.st_ino)
            if not stat.S_ISDIR(st.st_mode):
                entry += (st.st_size, st.st_mtime_ns)
            out.append(entry)
    return sorted(out)


@pytest.fixture
def populated(berth, busybox_image):
    """A store that already holds an image, so 'unchanged' means something."""
    berth("pull", "--insecure", busybox_image["ref"])
    return store_listing(berth.root)


def manifest_of(registry, repo):
    import urllib.request
    req = urllib.request.Request("http://%s/v2/%s/manifests/1" % (registry.host, repo),
                                 headers={"Accept": images.MT_MANIFEST})
    return json.load(urllib.request.urlopen(req))


def serve_image(front, repo, config_bytes, layers):
    """Serves a hand-made image (manifest, config and layer blobs) from front."""
    cfg_digest = images.sha(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": images.MT_MANIFEST,
                "config": {"mediaType": images.MT_CONFIG, "digest": cfg_digest,
                           "size": len(config_bytes)},
                "layers": [{"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)}
                           for l in layers]}
    front.serve_manifest("/v2/%s/manifests/1" % repo, json.dumps(manifest).encode(),
                         images.MT_MANIFEST)

    def blob(data):
        return lambda h, req: h.reply(200, [("Content-Type", "application/octet-stream")], data)
    front.on("/v2/%s/blobs/%s" % (repo, cfg_digest), blob(config_bytes))
    for l in layers:
        front.on("/v2/%s/blobs/%s" % (repo, l.digest), blob(l.blob))


# Each case sets up a failure and returns (extra pull args, ref, words the line must hold).

def unknown_manifest_media_type(front, registry, tmp_path):
    front.serve_manifest("/v2/odd/manifests/1", b'{"schemaVersion":2}',
                         "application/vnd.example.thing+json")
    return [], front.host + "/odd:1", ["unknown manifest media type",
                                       "application/vnd.example.thing+json"]


def unknown_layer_media_type(front, registry, tmp_path):
    push(tmp_path, registry, "oddlayer", [Layer([file("x", "x")])])
    m = manifest_of(registry, "oddlayer")
    m["layers"][0]["mediaType"] = "application/vnd.example.layer.v1"
    front.serve_manifest("/v2/oddlayer/manifests/1", json.dumps(m).encode(), images.MT_MANIFEST)
    return [], front.host + "/oddlayer:1", ["unknown layer media type",
                                            "application/vnd.example.layer.v1"]


def schema1_manifest(front, registry, tmp_path):
    body = json.dumps({"schemaVersion": 1, "name": "old", "tag": "1", "fsLayers": [],
                       "history": []}).encode()
    front.serve_manifest("/v2/old/manifests/1", body,
                         "application/vnd.docker.distribution.manifest.v1+prettyjws")
    return [], front.host + "/old:1", ["schema 1", "not supported"]


def malformed_manifest_json(front, registry, tmp_path):
    front.serve_manifest("/v2/broken/manifests/1", b'{"schemaVersion": 2, "config": ',
                         images.MT_MANIFEST)
    return [], front.host + "/broken:1", ["manifest", "malformed JSON"]


def malformed_config_json(front, registry, tmp_path):
    serve_image(front, "badcfg", b'{"rootfs": {"diff_ids": [', [])
    return [], front.host + "/badcfg:1", ["config sha256:", "malformed JSON"]


def manifest_digest_mismatch(front, registry, tmp_path):
    digest = push(tmp_path, registry, "mdig", [Layer([file("x", "x")])])
    m = manifest_of(registry, "mdig")
    m["annotations"] = {"tampered": "yes"}
    front.serve_manifest("/v2/mdig/manifests/" + digest, json.dumps(m).encode(),
                         images.MT_MANIFEST, digest_header=False)
    return [], front.host + "/mdig@" + digest, ["digest mismatch"]


def layer_digest_mismatch_after_another_layer_completed(front, registry, tmp_path):
    first = Layer([file("first", os.urandom(200_000))])
    second = Layer([file("second", os.urandom(20_000))])
    push(tmp_path, registry, "ldig", [first, second])
    bad = bytearray(second.blob)
    bad[len(bad) // 2] ^= 0xff
    front.replace_blob(second.digest, bytes(bad))
    return [], front.host + "/ldig:1", ["layer " + second.digest, "digest mismatch"]


def layer_longer_than_its_descriptor(front, registry, tmp_path):
    layer = Layer([file("long", os.urandom(50_000))])
    push(tmp_path, registry, "toolong", [layer])
    front.replace_blob(layer.digest, layer.blob + b"\0" * 4096)
    return [], front.host + "/toolong:1", ["layer " + layer.digest,
                                           "more than the descriptor's %d bytes" % len(layer.blob)]


def layer_sent_chunked_past_its_descriptor(front, registry, tmp_path):
    layer = Layer([file("chunked", os.urandom(50_000))])
    push(tmp_path, registry, "chunked", [layer])

    def chunked(h, req):  # no Content-Length: the size shows only as the bytes come
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for part in (layer.blob, b"\0" * 4096):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        h.wfile.write(b"0\r\n\r\n")
    front.on("/blobs/" + layer.digest, chunked)
    return [], front.host + "/chunked:1", ["layer " + layer.digest,
                                           "more bytes than the descriptor's size"]


def layer_not_matching_its_diff_id(front, registry, tmp_path):
    wrong = "sha256:" + "0" * 64
    push(tmp_path, registry, "diffid", [Layer([file("x", "x")])], diff_ids=[wrong])
    return [], registry.host + "/diffid:1", ["diff_id " + wrong]


def unauthorized_without_credentials(front, registry, tmp_path):
    def deny(h, req):
        h.reply(401, [("Content-Type", "application/json"),
                      ("WWW-Authenticate", 'Basic realm="berth-test"')],
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
    front.on("/v2/", deny)
    return [], front.host + "/private:1", ["requires a login", "credentials"]


def unauthorized_with_wrong_credentials(front, registry, tmp_path):
    front.require_bearer(user="u", password="right")
    return ["--username", "u", "--password", "wrong"], front.host + "/private:1", \
        ["token service", "refused the credentials"]


def unknown_tag(front, registry, tmp_path):
    return [], registry.host + "/nosuch:1", ["404", "MANIFEST_UNKNOWN"]


def missing_layer_blob(front, registry, tmp_path):
    layer = Layer([file("gone", "x")])
    push(tmp_path, registry, "noblob", [layer])
    front.fail_with("/blobs/" + layer.digest, 404)
    return [], front.host + "/noblob:1", ["layer " + layer.digest, "404"]


def registry_stops_answering(front, registry, tmp_path):
    push(tmp_path, registry, "stall", [Layer([file("x", "x")])])
    front.stall("/v2/stall/manifests/1")
    return ["--timeout", "1"], front.host + "/stall:1", ["stopped answering"]


def registry_stops_answering_in_the_middle_of_a_layer(front, registry, tmp_path):
    layer = Layer([file("half", os.urandom(300_000))])
    push(tmp_path, registry, "halfway", [layer])

    def half_then_silence(h, req):
        status, headers, body = h.forward(req)
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:len(body) // 2])
        h.wfile.flush()
        front.released.wait(120)
        h.close_connection = True
    front.on("/blobs/" + layer.digest, half_then_silence)
    return ["--timeout", "1"], front.host + "/halfway:1", \
        ["layer " + layer.digest, "stopped answering"]


def registry_gone(front, registry, tmp_path):
    host = front.host
    front.stop()  # nothing listens on that port any more
    return [], host + "/gone:1", ["Couldn't connect", "gave up"]


def manifest_over_4_mib(front, registry, tmp_path):
    body = json.dumps({"schemaVersion": 2, "mediaType": images.MT_MANIFEST,
                       "annotations": {"pad": "x" * (4 << 20)}}).encode()
    front.serve_manifest("/v2/huge/manifests/1", body, images.MT_MANIFEST)
    return [], front.host + "/huge:1", ["larger than 4 MiB"]


def manifest_with_a_wrong_docker_content_digest(front, registry, tmp_path):
    def act(h, req):
        h.reply(200, [("Content-Type", images.MT_MANIFEST),
                      ("Docker-Content-Digest", "sha256:" + "1" * 64)], b'{"schemaVersion":2}')
    front.on("/v2/liar/manifests/1", act)
    return [], front.host + "/liar:1", ["Docker-Content-Digest"]


def blob_with_a_wrong_docker_content_digest(front, registry, tmp_path):
    layer = Layer([file("hdr", "x")])
    push(tmp_path, registry, "hdr", [layer])

    def act(h, req):
        status, headers, body = h.forward(req)
        headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
        h.reply(status, headers + [("Docker-Content-Digest", "sha256:" + "2" * 64)], body)
    front.on("/blobs/" + layer.digest, act)
    return [], front.host + "/hdr:1", [layer.digest, "Docker-Content-Digest"]


def hostile_layer(front, registry, tmp_path):
    layer = Layer([file("ok", "x"), file("../escape", "x")])
    push(tmp_path, registry, "hostile", [layer])
    return [], registry.host + "/hostile:1", ["layer " + layer.digest, '"../escape"', ".."]


CASES = [unknown_manifest_media_type, unknown_layer_media_type, schema1_manifest,
         malformed_manifest_json, malformed_config_json, manifest_digest_mismatch,
         layer_digest_mismatch_after_another_layer_completed, layer_longer_than_its_descriptor,
         layer_sent_chunked_past_its_descriptor, layer_not_matching_its_diff_id,
         unauthorized_without_credentials, unauthorized_with_wrong_credentials, unknown_tag,
         missing_layer_blob, registry_stops_answering,
         registry_stops_answering_in_the_middle_of_a_layer, registry_gone, manifest_over_4_mib,
         manifest_with_a_wrong_docker_content_digest, blob_with_a_wrong_docker_content_digest,
         hostile_layer]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_failed_pull_prints_one_line_naming_image_and_cause_and_leaves_the_store_as_it_was(
        case, berth, registry, front, tmp_path, populated):
    args, ref, needles = case(front, registry, tmp_path)
    p = berth("pull", "--insecure", *args, ref, check=False)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert p.stdout == b""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("berth: pull " + ref + ": "), err
    for n in needles:
        assert n in err, err
    assert err.count("layer sha256:") <= 1, err  # each part of the line said once
    assert store_listing(berth.root) == populated
    # The image pulled before is still whole.
    berth("inspect", "127.0.0.1:%d/busybox:1" % registry.port)
