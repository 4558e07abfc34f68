"""The image store's commands: images, rmi, gc, and leases kept by gc."""
import json
import os

from helpers import push
from images import Layer, file


def oci(berth, *parts):
    return os.path.join(berth.root, "oci", *parts)


def pull(berth, ref):
    return berth("pull", "--insecure", ref).stdout.decode().strip()


def test_images_lists_repository_tag_digest_size_and_age(berth, busybox_image):
    digest = pull(berth, busybox_image["ref"])
    out = berth("images").stdout.decode().splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED"]
    row = out[1].split()
    repo, tag = busybox_image["ref"].rsplit(":", 1)
    assert row[0] == repo and row[1] == tag
    assert row[2] == digest[7:19]
    assert row[4] == "MB" or row[4] == "kB"
    assert out[1].endswith("seconds ago")


def test_images_on_an_empty_store_prints_the_header_only(berth):
    out = berth("images").stdout.decode().splitlines()
    assert len(out) == 1 and out[0].startswith("REPOSITORY")


def test_rmi_removes_the_tag_but_not_the_content(berth, busybox_image):
    pull(berth, busybox_image["ref"])
    layers = os.listdir(oci(berth, "layers", "sha256"))
    p = berth("rmi", busybox_image["ref"])
    assert p.stdout.decode() == "untagged: %s\n" % busybox_image["ref"]
    assert len(berth("images").stdout.decode().splitlines()) == 1
    assert os.listdir(oci(berth, "layers", "sha256")) == layers
    p = berth("inspect", busybox_image["ref"], check=False)
    assert p.returncode == 1 and "not in the store" in p.stderr.decode()


def test_rmi_of_an_unknown_image_fails(berth, registry):
    p = berth("rmi", registry.host + "/never:1", check=False)
    assert p.returncode == 1
    assert "not in the store" in p.stderr.decode()


def test_rmi_by_digest_removes_every_tag_of_that_image(berth, registry, tmp_path):
    layers = [Layer([file("same", "1")])]
    d = push(tmp_path, registry, "twotags", layers, tag="a")
    push(tmp_path, registry, "twotags", layers, tag="b")
    pull(berth, registry.host + "/twotags:a")
    pull(berth, registry.host + "/twotags:b")
    out = berth("rmi", "%s/twotags@%s" % (registry.host, d)).stdout.decode()
    assert sorted(out.splitlines()) == ["untagged: %s/twotags:a" % registry.host,
                                        "untagged: %s/twotags:b" % registry.host]


def test_gc_removes_what_no_tag_uses_and_keeps_the_rest(berth, registry, tmp_path):
    shared = Layer([file("shared", "s")])
    only_a = Layer([file("a", "a")])
    push(tmp_path, registry, "gca", [shared, only_a])
    only_b = Layer([file("b", "b")])
    push(tmp_path, registry, "gcb", [shared, only_b])
    pull(berth, registry.host + "/gca:1")
    pull(berth, registry.host + "/gcb:1")
    berth("rmi", registry.host + "/gca:1")
    out = berth("gc").stdout.decode().splitlines()
    removed = [l.split()[2] for l in out if l.startswith("removed layer")]
    assert removed == [only_a.diff_id]
    assert sum(1 for l in out if l.startswith("removed blob")) == 2  # manifest + config
    assert out[-1].startswith("freed ") and "(1 layers, 2 blobs)" in out[-1]
    assert sorted(os.listdir(oci(berth, "layers", "sha256"))) == \
        sorted([shared.diff_id[7:], only_b.diff_id[7:]])
    berth("inspect", registry.host + "/gcb:1")


def test_gc_on_a_clean_store_frees_nothing(berth, busybox_image):
    pull(berth, busybox_image["ref"])
    out = berth("gc").stdout.decode()
    assert out == "freed 0.0 kB (0 layers, 0 blobs)\n"


def test_gc_keeps_images_held_by_a_lease(berth, registry, tmp_path):
    layer = Layer([file("leased", "yes")])
    digest = push(tmp_path, registry, "leased", [layer])
    pull(berth, registry.host + "/leased:1")
    # an instance's lease, as oci_lease_add() writes it
    with open(oci(berth, "leases", "instance-1"), "w") as f:
        f.write(digest + "\n")
    berth("rmi", registry.host + "/leased:1")
    out = berth("gc").stdout.decode()
    assert "removed" not in out
    img = json.loads(berth("inspect", digest).stdout)
    assert os.path.isfile(os.path.join(img["layers"][0], "leased"))
    os.unlink(oci(berth, "leases", "instance-1"))
    out = berth("gc").stdout.decode()
    assert "removed layer " + layer.diff_id in out
    assert os.listdir(oci(berth, "layers", "sha256")) == []
    assert os.listdir(oci(berth, "blobs", "sha256")) == []


def test_store_is_private_to_root(berth, busybox_image):
    pull(berth, busybox_image["ref"])
    assert os.stat(oci(berth)).st_mode & 0o777 == 0o700
