"""berth pull against a real registry: formats, platforms, compression,
sharing, and what the store looks like afterwards."""
import json
import os
import subprocess
import urllib.request

import images
from images import Layer, OCILayout, file, skopeo_push
from registry_fixtures import Front

MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def store(berth):
    return os.path.join(berth.root, "oci")


def layer_dirs(berth):
    d = os.path.join(store(berth), "layers", "sha256")
    return sorted(os.listdir(d))


def inspect(berth, ref):
    return json.loads(berth("inspect", ref).stdout)


def test_pull_prints_the_manifest_digest_and_opens_the_image(berth, busybox_image):
    p = berth("pull", "--insecure", busybox_image["ref"])
    assert p.stdout.decode().strip() == busybox_image["digest"]
    img = inspect(berth, busybox_image["ref"])
    assert img["digest"] == busybox_image["digest"]
    assert len(img["layers"]) == 1
    assert os.path.isfile(os.path.join(img["layers"][0], "bin", "busybox"))
    assert os.readlink(os.path.join(img["layers"][0], "bin", "sh")) == "busybox"
    assert img["cmd"] == ["/bin/sh"]
    assert img["os"] == "linux" and img["architecture"] == "amd64"


def test_pull_is_quiet_on_stderr_when_not_a_terminal(berth, busybox_image):
    p = berth("pull", "--insecure", busybox_image["ref"])
    assert p.stderr == b""


def test_image_config_fields_reach_the_instance(berth, registry, tmp_path):
    cfg = {"Entrypoint": ["/bin/echo"], "Cmd": ["hello"], "Env": ["A=1", "PATH=/bin"],
           "WorkingDir": "/srv", "User": "1000:1000"}
    images.push_image(tmp_path, registry.host, "cfgimg", "1",
                      [Layer([images.dir("srv"), file("srv/x", "x")])], config=cfg)
    berth("pull", "--insecure", registry.host + "/cfgimg:1")
    img = inspect(berth, registry.host + "/cfgimg:1")
    assert img["entrypoint"] == ["/bin/echo"] and img["cmd"] == ["hello"]
    assert img["env"] == ["A=1", "PATH=/bin"]
    assert img["working_dir"] == "/srv" and img["user"] == "1000:1000"


def test_layers_stack_bottom_first(berth, registry, tmp_path):
    layers = [Layer([file("a", "1")]), Layer([file("b", "2")]), Layer([file("c", "3")])]
    images.push_image(tmp_path, registry.host, "three", "1", layers)
    berth("pull", "--insecure", registry.host + "/three:1")
    img = inspect(berth, registry.host + "/three:1")
    assert [os.path.basename(d) for d in img["layers"]] == [l.diff_id[7:] for l in layers]
    assert os.listdir(img["layers"][0]) == ["a"]
    assert os.listdir(img["layers"][2]) == ["c"]


def test_gzip_zstd_and_uncompressed_layers(berth, registry, tmp_path):
    layers = [Layer([file("gz", "g" * 5000)], "gzip"), Layer([file("zs", "z" * 5000)], "zstd"),
              Layer([file("raw", "r" * 5000)], "none")]
    images.push_image(tmp_path, registry.host, "comp", "1", layers)
    berth("pull", "--insecure", registry.host + "/comp:1")
    img = inspect(berth, registry.host + "/comp:1")
    for d, name, ch in zip(img["layers"], ["gz", "zs", "raw"], "gzr"):
        with open(os.path.join(d, name)) as f:
            assert f.read() == ch * 5000


def test_docker_v2_schema2_manifest(berth, registry, tmp_path):
    layout = str(tmp_path / "layout")
    OCILayout(layout).add_image([Layer([file("docker", "v2")])], tag="1")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2",
                    "oci:%s:1" % layout, "docker://%s/dockerv2:1" % registry.host],
                   check=True, stdout=subprocess.DEVNULL)
    digest = berth("pull", "--insecure", registry.host + "/dockerv2:1").stdout.decode().strip()
    img = inspect(berth, registry.host + "/dockerv2:1")
    assert img["digest"] == digest
    with open(os.path.join(img["layers"][0], "docker")) as f:
        assert f.read() == "v2"
    blob = os.path.join(store(berth), "blobs", "sha256", digest[7:])
    with open(blob) as f:
        assert json.load(f)["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


def push_multi_platform(tmp_path, registry):
    layout_dir = str(tmp_path / "multi")
    layout = OCILayout(layout_dir)
    amd = layout.add_image([Layer([file("arch", "amd64")])], tag="m", arch="amd64")
    arm = layout.add_image([Layer([file("arch", "arm64")])], tag="m", arch="arm64",
                           variant="v8")
    # one index holding both images, tagged "m"
    for m in layout.manifests:
        m["annotations"] = {}
    index = {"schemaVersion": 2, "mediaType": images.MT_INDEX, "manifests": layout.manifests}
    ibytes = json.dumps(index).encode()
    idigest = layout.put(ibytes)
    with open(os.path.join(layout_dir, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": images.MT_INDEX,
                   "manifests": [{"mediaType": images.MT_INDEX, "digest": idigest,
                                  "size": len(ibytes),
                                  "annotations": {"org.opencontainers.image.ref.name": "m"}}]},
                  f)
    skopeo_push(layout_dir, "m", registry.host, "multi", all_images=True)
    return idigest, amd, arm


def test_index_picks_the_host_platform(berth, registry, tmp_path):
    idigest, amd, arm = push_multi_platform(tmp_path, registry)
    out = berth("pull", "--insecure", registry.host + "/multi:m").stdout.decode().strip()
    assert out == idigest
    img = inspect(berth, registry.host + "/multi:m")
    assert img["digest"] == amd
    with open(os.path.join(img["layers"][0], "arch")) as f:
        assert f.read() == "amd64"


def test_platform_option_picks_another_image_from_the_index(berth, registry, tmp_path):
    idigest, amd, arm = push_multi_platform(tmp_path, registry)
    berth("pull", "--insecure", "--platform", "linux/arm64/v8", registry.host + "/multi:m")
    img = inspect(berth, registry.host + "/multi:m")
    assert img["digest"] == arm
    assert img["architecture"] == "arm64"


def test_platform_missing_from_the_index_is_a_clear_error(berth, registry, tmp_path):
    push_multi_platform(tmp_path, registry)
    p = berth("pull", "--insecure", "--platform", "linux/s390x", registry.host + "/multi:m",
              check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.count("\n") == 1
    assert "no image for platform linux/s390x" in err and "linux/arm64/v8" in err


def test_pull_by_digest(berth, busybox_image):
    repo = busybox_image["ref"].rsplit(":", 1)[0]
    ref = "%s@%s" % (repo, busybox_image["digest"])
    out = berth("pull", "--insecure", ref).stdout.decode().strip()
    assert out == busybox_image["digest"]
    assert inspect(berth, ref)["digest"] == busybox_image["digest"]
    assert inspect(berth, busybox_image["digest"])["digest"] == busybox_image["digest"]


def test_shared_layers_are_stored_once(berth, registry, tmp_path):
    base = Layer([file("base", "shared")])
    images.push_image(tmp_path, registry.host, "one", "1", [base, Layer([file("one", "1")])])
    images.push_image(tmp_path, registry.host, "two", "1", [base, Layer([file("two", "2")])])
    berth("pull", "--insecure", registry.host + "/one:1")
    berth("pull", "--insecure", registry.host + "/two:1")
    assert len(layer_dirs(berth)) == 3
    a = inspect(berth, registry.host + "/one:1")["layers"][0]
    b = inspect(berth, registry.host + "/two:1")["layers"][0]
    assert a == b


def test_pulling_again_fetches_no_layer(berth, registry, tmp_path):
    layer = Layer([file("x", "x")])
    images.push_image(tmp_path, registry.host, "again", "1", [layer])
    front = Front(registry.host)
    try:
        berth("pull", "--insecure", front.host + "/again:1")
        assert len(front.seen("/blobs/" + layer.digest)) == 1
        before = {d: os.stat(os.path.join(store(berth), "layers", "sha256", d)).st_ino
                  for d in layer_dirs(berth)}
        berth("pull", "--insecure", front.host + "/again:1")
        assert len(front.seen("/blobs/" + layer.digest)) == 1  # not asked for again
        after = {d: os.stat(os.path.join(store(berth), "layers", "sha256", d)).st_ino
                 for d in layer_dirs(berth)}
        assert before == after
    finally:
        front.stop()


def test_manifest_requests_accept_oci_and_docker_manifests_and_indexes(berth, busybox_image,
                                                                       registry):
    front = Front(registry.host)
    try:
        berth("pull", "--insecure", front.host + "/busybox:1")
        accept = front.seen("/manifests/1")[0].header("Accept")
    finally:
        front.stop()
    types = [t.strip() for t in accept.split(",")]
    assert sorted(types) == sorted([images.MT_INDEX, images.MT_MANIFEST, MT_DOCKER_LIST,
                                    MT_DOCKER_MANIFEST])


def test_docker_manifest_list_picks_the_host_platform(berth, registry, tmp_path):
    entries = []
    for arch in ("arm64", "amd64"):
        layout = str(tmp_path / arch)
        OCILayout(layout).add_image([Layer([file("arch", arch)])], tag="1", arch=arch)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format",
                        "v2s2", "oci:%s:1" % layout,
                        "docker://%s/dlist:%s" % (registry.host, arch)],
                       check=True, stdout=subprocess.DEVNULL)
        req = urllib.request.Request("http://%s/v2/dlist/manifests/%s" % (registry.host, arch),
                                     headers={"Accept": MT_DOCKER_MANIFEST})
        body = urllib.request.urlopen(req).read()
        entries.append({"mediaType": MT_DOCKER_MANIFEST, "digest": images.sha(body),
                        "size": len(body), "platform": {"architecture": arch, "os": "linux"}})
    body = json.dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST,
                       "manifests": entries}).encode()
    front = Front(registry.host)
    try:
        front.serve_manifest("/v2/dlist/manifests/multi", body, MT_DOCKER_LIST)
        out = berth("pull", "--insecure", front.host + "/dlist:multi").stdout.decode().strip()
    finally:
        front.stop()
    assert out == images.sha(body)
    img = inspect(berth, front.host + "/dlist:multi")
    assert img["digest"] == entries[1]["digest"]
    with open(os.path.join(img["layers"][0], "arch")) as f:
        assert f.read() == "amd64"


def test_malformed_reference_is_refused(berth):
    p = berth("pull", "--insecure", "127.0.0.1:1/UPPER:1", check=False)
    assert p.returncode == 1
    assert "invalid repository name" in p.stderr.decode()


def test_progress_bars_are_drawn_when_stderr_is_a_terminal(berth, registry, tmp_path):
    import pty
    import subprocess
    layers = [Layer([file("p%d" % i, os.urandom(100000))]) for i in range(2)]
    images.push_image(tmp_path, registry.host, "progress", "1", layers)
    master, slave = pty.openpty()
    p = subprocess.run(berth.cmd("pull", "--insecure", registry.host + "/progress:1"),
                       stdout=subprocess.PIPE, stderr=slave, timeout=60)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.returncode == 0
    text = out.decode(errors="replace")
    for l in layers:
        assert l.digest[:19] in text
    assert text.count("done") >= 2
    assert p.stdout.decode().startswith("sha256:")


def test_concurrent_pulls_of_one_image_store_it_once(berth, registry, tmp_path):
    import subprocess
    layers = [Layer([file("c%d" % i, os.urandom(300000))]) for i in range(3)]
    images.push_image(tmp_path, registry.host, "concurrent", "1", layers)
    ref = registry.host + "/concurrent:1"
    procs = [subprocess.Popen(berth.cmd("pull", "--insecure", ref), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len({o[0] for o in outs}) == 1
    assert layer_dirs(berth) == sorted(l.diff_id[7:] for l in layers)
    assert os.listdir(os.path.join(store(berth), "tmp")) == []
    for d in inspect(berth, ref)["layers"]:
        assert len(os.listdir(d)) == 1


def test_image_for_another_machine_needs_the_platform_option(berth, registry, tmp_path):
    images.push_image(tmp_path, registry.host, "armonly", "1", [Layer([file("a", "arm")])],
                      arch="arm64", variant="v8")
    ref = registry.host + "/armonly:1"
    p = berth("pull", "--insecure", ref, check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.count("\n") == 1
    assert "the image is for linux/arm64/v8, not linux/amd64" in err and "--platform" in err
    berth("pull", "--insecure", "--platform", "linux/arm64", ref)
    assert inspect(berth, ref)["architecture"] == "arm64"


def test_platform_option_refuses_a_single_image_of_another_platform(berth, busybox_image):
    p = berth("pull", "--insecure", "--platform", "linux/arm/v7", busybox_image["ref"],
              check=False)
    assert p.returncode == 1
    assert "the image is for linux/amd64, not linux/arm/v7" in p.stderr.decode()
