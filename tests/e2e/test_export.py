"""berth export REF DIR writes the flattened root filesystem that umoci unpack
writes into a bundle's rootfs: compared entry by entry (type, mode, owner,
size, content, symlink target, hardlink groups, xattrs, mtimes of files and
directories)."""
import hashlib
import json
import os
import stat
import subprocess

import pytest

import images
from images import Entry, Layer, dir, file, hardlink, opaque, symlink, whiteout  # noqa: A004

# (umoci 0.4 reads gzip and uncompressed layers, not zstd.)
# VFS_CAP_REVISION_2, cap_net_raw permitted + effective
CAP_NET_RAW = b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\x00" * 12
# tarfile takes pax values as str; surrogates carry the raw bytes.
CAP_PAX = CAP_NET_RAW.decode("utf-8", "surrogateescape")
M1, M2, M3 = 1600000000, 1650000000, 1700000000


def fifo(name, **kw):
    return Entry(name, "fifo", mode=0o640, **kw)


def build_layers():
    """Three layers exercising replacement, whiteouts, opaque directories,
    hardlinks, setuid bits, capabilities, xattrs and symlinks."""
    base = images.busybox_layer([
        dir("usr", mtime=M1), dir("usr/bin", mtime=M1), dir("usr/share", mtime=M1),
        dir("usr/share/doc", mtime=M1, uid=2, gid=3),
        file("usr/share/doc/README", "read me\n", mtime=M1),
        file("usr/share/doc/LICENSE", "MIT\n" * 100, mode=0o444, mtime=M1),
        dir("var", mtime=M1), dir("var/cache", mtime=M1),
        file("var/cache/a", "cached a", mtime=M1), dir("var/cache/sub", mtime=M1),
        file("var/cache/sub/b", "cached b", mtime=M1),
        dir("opt", mtime=M1), dir("opt/app", mtime=M1),
        file("opt/app/run", "#!/bin/sh\necho run\n", mode=0o755, uid=1000, gid=1000, mtime=M1),
        hardlink("opt/app/run-again", "opt/app/run"),
        hardlink("usr/bin/run", "opt/app/run"),
        file("usr/bin/su", "setuid", mode=0o4755, mtime=M1),
        file("usr/bin/wall", "setgid", mode=0o2755, gid=5, mtime=M1),
        file("usr/bin/ping", "caps", mode=0o755, mtime=M1,
             xattrs={"security.capability": CAP_PAX}),
        file("usr/bin/tagged", "x", mtime=M1, xattrs={"user.origin": "base"}),
        symlink("usr/bin/busybox", "/bin/busybox", mtime=M1, uid=7, gid=8),
        symlink("usr/bin/dangling", "../nowhere", mtime=M1),
        file("etc/hostname", "base\n", mtime=M1),
        file("etc/motd", "welcome\n", mtime=M1),
        dir("data", mtime=M1), file("data/old", "old", mtime=M1),
        file("was-file", "file", mtime=M1),
        dir("was-dir", mtime=M1), file("was-dir/inner", "inner", mtime=M1),
        fifo("run/ctl", mtime=M1),
    ])
    middle = [
        dir("etc", mtime=M2), file("etc/hostname", "middle\n", mode=0o600, mtime=M2),
        whiteout("etc/motd"),
        dir("var", mtime=M2), dir("var/cache", mode=0o700, mtime=M2), opaque("var/cache"),
        file("var/cache/fresh", "fresh", mtime=M2),
        dir("opt", mtime=M2), dir("opt/app", mtime=M2),
        file("opt/app/run", "#!/bin/sh\necho run v2\n", mode=0o750, uid=1000, gid=1000, mtime=M2),
        dir("usr", mtime=M2), dir("usr/share", mtime=M2), whiteout("usr/share/doc"),
        dir("usr/bin", mtime=M2),
        file("usr/bin/tagged", "y", mtime=M2, xattrs={"user.origin": "middle", "user.more": "1"}),
        file("was-dir", "now a file", mtime=M2),
        dir("was-file", mode=0o711, mtime=M2), file("was-file/inside", "inside", mtime=M2),
        dir("lib", mtime=M2), file("lib/libx.so.1", "lib" * 1000, mtime=M2),
        hardlink("lib/libx.so", "lib/libx.so.1"),
    ]
    top = [
        dir("data", mode=0o750, uid=1000, gid=1000, mtime=M3), opaque("data"),
        file("data/new", "new", mtime=M3),
        dir("etc", mtime=M3), file("etc/motd", "back again\n", mtime=M3),
        dir("usr", mtime=M3), dir("usr/share", mtime=M3), dir("usr/share/doc", mtime=M3),
        file("usr/share/doc/NEW", "new doc", mtime=M3),
        dir("lib", mtime=M3), whiteout("lib/libx.so"),
        dir("tmp", mode=0o1777, mtime=M3),
    ]
    return [Layer(base), Layer(middle), Layer(top, "none")]


def snapshot(root):
    """Every entry under root: path -> its properties; plus hardlink groups."""
    entries, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)),
                 "uid": st.st_uid, "gid": st.st_gid,
                 "xattrs": {k: os.getxattr(full, k, follow_symlinks=False)
                            for k in sorted(os.listxattr(full, follow_symlinks=False))}}
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    e["sha256"] = hashlib.sha256(f.read()).hexdigest()
                e["size"] = st.st_size
                inodes.setdefault(st.st_ino, []).append(rel)
            if stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(full)
            e["mtime"] = st.st_mtime_ns
            entries[rel] = e
    groups = sorted(sorted(g) for g in inodes.values() if len(g) > 1)
    return entries, groups


@pytest.fixture(scope="module")
def export_image(registry, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("img-export")
    digest = images.push_image(tmp, registry.host, "exportme", "1", build_layers())
    return {"ref": "%s/exportme:1" % registry.host, "digest": digest}


def umoci_rootfs(ref, tmp_path):
    layout, bundle = str(tmp_path / "oci"), str(tmp_path / "bundle")
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    "docker://" + ref, "oci:%s:1" % layout], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["umoci", "unpack", "--image", layout + ":1", bundle], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.join(bundle, "rootfs")


def test_export_matches_umoci_unpack(berth, export_image, tmp_path):
    berth("pull", "--insecure", export_image["ref"])
    out = str(tmp_path / "export")
    berth("export", export_image["ref"], out)
    ours, our_links = snapshot(out)
    theirs, their_links = snapshot(umoci_rootfs(export_image["ref"], tmp_path))
    assert sorted(ours) == sorted(theirs)
    for path in sorted(theirs):
        assert ours[path] == theirs[path], path
    assert our_links == their_links


def test_export_applies_whiteouts_opaque_dirs_and_keeps_hardlinks(berth, export_image, tmp_path):
    berth("pull", "--insecure", export_image["ref"])
    out = tmp_path / "export"
    berth("export", export_image["ref"], out)
    assert not (out / "usr/share/doc/README").exists()
    assert (out / "usr/share/doc/NEW").read_text() == "new doc"
    assert sorted(os.listdir(out / "var/cache")) == ["fresh"]
    assert sorted(os.listdir(out / "data")) == ["new"]
    assert (out / "etc/motd").read_text() == "back again\n"
    assert not (out / "lib/libx.so").exists()
    # The link group lost its upper member, the lower pair stays linked.
    assert os.stat(out / "opt/app/run-again").st_ino == os.stat(out / "usr/bin/run").st_ino
    assert (out / "opt/app/run-again").read_text() == "#!/bin/sh\necho run\n"
    assert (out / "opt/app/run").read_text() == "#!/bin/sh\necho run v2\n"
    assert os.stat(out / "usr/bin/su").st_mode & 0o7777 == 0o4755
    assert os.getxattr(out / "usr/bin/ping", "security.capability") == CAP_NET_RAW
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            assert not stat.S_ISCHR(os.lstat(full).st_mode), full
            assert not [k for k in os.listxattr(full, follow_symlinks=False)
                        if k.startswith("trusted.overlay.")], full


def test_export_into_a_non_empty_directory_fails(berth, busybox_image, tmp_path):
    berth("pull", "--insecure", busybox_image["ref"])
    out = tmp_path / "full"
    out.mkdir()
    (out / "mine").write_text("keep")
    p = berth("export", busybox_image["ref"], out, check=False)
    assert p.returncode != 0
    assert str(out) in p.stderr.decode()
    assert os.listdir(out) == ["mine"]
    (out / "mine").unlink()  # the control: once empty, it takes the export
    berth("export", busybox_image["ref"], out)
    assert (out / "bin").is_dir()


def test_export_of_an_image_not_in_the_store_names_it(berth, registry, tmp_path):
    ref = registry.host + "/never-pulled:1"
    p = berth("export", ref, tmp_path / "out", check=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "never-pulled" in err and "not in the store" in err


def test_overlay_mount_of_the_pulled_layers_shows_the_exported_tree(berth, export_image,
                                                                    tmp_path):
    """The layers are stored in the form overlayfs reads: mounted as they
    are (top layer first), the kernel applies the whiteouts and opaque
    directories and shows what export wrote."""
    berth("pull", "--insecure", export_image["ref"])
    out = str(tmp_path / "export")
    berth("export", export_image["ref"], out)
    layers = json.loads(berth("inspect", export_image["ref"]).stdout)["layers"]
    mnt = tmp_path / "merged"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "ro,lowerdir=" + ":".join(reversed(layers)), str(mnt)], check=True)
    try:
        merged, merged_links = snapshot(str(mnt))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    ours, our_links = snapshot(out)
    assert sorted(merged) == sorted(ours)
    for path in sorted(ours):
        assert merged[path] == ours[path], path
    assert merged_links == our_links
