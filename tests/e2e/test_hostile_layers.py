"""Hostile layers: berth pull either fails with one line naming the image, the
layer and the entry, or skips the entry with a warning; a sentinel on the
host is never touched, whatever the layer says."""
import json
import os
import stat

import pytest

from helpers import push
from images import Entry, Layer, dir, file, hardlink, symlink  # noqa: A004

UP = "../" * 40  # more than enough to climb out of any store path


@pytest.fixture
def sentinel(tmp_path):
    """A directory on the host with one file; check() asserts both as made."""
    d = tmp_path / "sentinel"
    d.mkdir(mode=0o755)
    (d / "keep").write_text("untouched\n")
    os.chmod(d / "keep", 0o644)
    os.chmod(d, 0o755)

    def check():
        assert sorted(os.listdir(d)) == ["keep"]
        assert (d / "keep").read_text() == "untouched\n"
        st = os.lstat(d / "keep")
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
        assert st.st_nlink == 1 and st.st_uid == 0
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o755
    check.path = str(d)
    return check


def pushed(registry, tmp_path, repo, layers):
    """The reference of an image pushed with these layers."""
    push(tmp_path, registry, repo, layers)
    return "%s/%s:1" % (registry.host, repo)


def pull_fails(berth, ref, layer, *words):
    p = berth("pull", "--insecure", ref, check=False)
    assert p.returncode != 0, "pull of %s should fail" % ref
    err = p.stderr.decode()
    assert len(err.strip().splitlines()) == 1, err
    for w in (ref, layer.digest) + words:
        assert w in err, "%r not in %r" % (w, err)
    images_out = berth("images").stdout.decode()
    assert ref.split("/", 1)[1].split(":")[0] not in images_out
    # Not even the image's good layers were kept, nor any work in progress.
    for sub in ("layers/sha256", "blobs/sha256", "refs", "tmp"):
        assert os.listdir(os.path.join(berth.root, "oci", sub)) == [], sub
    return err


def hostile_cases(s):
    """(repo, entries of the hostile layer, words the error must hold)."""
    return [
        ("abs-name", [file(s + "/evil", "pwned")], ['"%s/evil"' % s, "absolute"]),
        ("dotdot", [file(UP + s[1:] + "/evil", "pwned")], ["evil", '".."']),
        ("symlink-then-write", [symlink("evil", s), file("evil/keep", "pwned", mode=0o777)],
         ['"evil/keep"', '"evil" is a symlink']),
        ("relsymlink-then-write", [dir("d"), symlink("d/up", UP + s[1:]),
                                   file("d/up/keep", "pwned")], ['"d/up/keep"', "symlink"]),
        ("symlink-chain", [symlink("a", "b"), symlink("b", s), dir("a/sub", mode=0o777)],
         ['"a/sub/"', '"a" is a symlink']),
        ("hardlink-out", [hardlink("h", UP + s[1:] + "/keep")], ['"h"', '".."']),
        ("hardlink-abs", [hardlink("h", s + "/keep")], ['"h"', "absolute"]),
        ("hardlink-via-symlink", [symlink("s", s), hardlink("h", "s/keep")],
         ['"h"', "symlink"]),
        ("whiteout-dotdot", [dir("a"), file("a/.wh..."), file("a/x", "x")],
         ['"a/.wh..."', "whiteout"]),
        ("bare-whiteout", [file(".wh.")], ['".wh."', "whiteout"]),
        ("root-file", [file(".", "not a directory")], ['"."', "root"]),
        ("root-symlink", [symlink(".", s), file("keep", "pwned")], ['"."', "root"]),
    ]


@pytest.mark.parametrize("case", range(12))
def test_hostile_layer_fails_the_pull_naming_image_layer_and_entry(
        berth, registry, tmp_path, sentinel, case):
    repo, entries, words = hostile_cases(sentinel.path)[case]
    bad = Layer(entries)
    ref = pushed(registry, tmp_path, "hostile-" + repo,
               [Layer([dir("etc"), file("etc/ok", "fine")]), bad])
    pull_fails(berth, ref, bad, *words)
    sentinel()


def test_symlink_from_a_lower_layer_is_not_written_through(berth, registry, tmp_path, sentinel):
    # Each layer is unpacked on its own: the upper layer's "evil/" is a
    # directory of its own, which overlayfs shows instead of the symlink.
    ref = pushed(registry, tmp_path, "hostile-lower-symlink",
               [Layer([symlink("evil", sentinel.path), symlink("rel", UP + sentinel.path[1:])]),
                Layer([dir("evil"), file("evil/keep", "pwned", mode=0o777),
                       dir("rel"), file("rel/keep", "pwned")])])
    berth("pull", "--insecure", ref)
    sentinel()
    out = tmp_path / "rootfs"
    berth("export", ref, out)
    assert (out / "evil").is_dir() and not (out / "evil").is_symlink()
    assert (out / "evil/keep").read_text() == "pwned"
    sentinel()


def test_device_nodes_are_skipped_with_a_warning(berth, registry, tmp_path, sentinel):
    ref = pushed(registry, tmp_path, "hostile-devices",
               [Layer([dir("dev"), Entry("dev/mem", "chardev", mode=0o666, devmajor=1,
                                         devminor=1),
                       file("ok", "ok")])])
    p = berth("pull", "--insecure", ref)
    err = p.stderr.decode()
    assert '"dev/mem"' in err and "skipped" in err
    out = tmp_path / "rootfs"
    berth("export", ref, out)
    assert os.listdir(out / "dev") == []
    assert (out / "ok").read_text() == "ok"
    sentinel()


def test_overlay_xattrs_from_the_image_are_ignored(berth, registry, tmp_path):
    ref = pushed(registry, tmp_path, "hostile-xattrs",
               [Layer([dir("lower"), file("lower/secret", "s")]),
                Layer([dir("lower", xattrs={"trusted.overlay.opaque": "y"}),
                       file("f", "f", xattrs={"trusted.overlay.redirect": "/etc"})])])
    p = berth("pull", "--insecure", ref)
    err = p.stderr.decode()
    assert "trusted.overlay.opaque" in err and '"lower/"' in err
    layers = berth_layers(berth, ref)
    assert "trusted.overlay.opaque" not in os.listxattr(os.path.join(layers[1], "lower"))
    assert os.listxattr(os.path.join(layers[1], "f")) == []
    out = tmp_path / "rootfs"
    berth("export", ref, out)
    assert (out / "lower/secret").read_text() == "s"


def test_deep_nesting_after_many_entries_fails_naming_the_entry(
        berth, registry, tmp_path, sentinel):
    deep = "/".join(["d"] * 300) + "/f"
    bad = Layer([file("n%05d" % i, "") for i in range(20000)] + [file(deep, "deep")])
    ref = pushed(registry, tmp_path, "hostile-deep", [bad])
    pull_fails(berth, ref, bad, "d/d/d/d", "deeper than")
    sentinel()


def berth_layers(berth, ref):
    return json.loads(berth("inspect", ref).stdout)["layers"]
