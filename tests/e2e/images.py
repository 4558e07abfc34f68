"""Build OCI images for tests without a container engine.

Images are written as OCI layouts (index.json, blobs/sha256/...) from layers
described in Python, then pushed to a registry with skopeo. Layers can hold
anything a tar can: regular files, directories, symlinks, hardlinks,
whiteouts, and deliberately hostile entries.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

BUSYBOX = "/bin/busybox"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

# busybox applets linked in test images
APPLETS = ["sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "hostname", "mount",
           "ps", "grep", "head", "tail", "wc", "mkdir", "rm", "touch", "env", "stat",
           "readlink", "ip", "kill", "test", "[", "printf", "dd", "yes", "nc", "seq",
           "sed", "awk", "tr", "cut", "chmod", "ln", "date", "uname", "whoami", "pwd"]


class Entry:
    """One tar entry. kind: file, dir, symlink, hardlink, fifo, chardev."""

    def __init__(self, name, kind="file", data=b"", mode=None, uid=0, gid=0, target=None,
                 mtime=1700000000, xattrs=None, devmajor=0, devminor=0):
        self.name, self.kind, self.data = name, kind, data
        self.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
        self.uid, self.gid, self.target, self.mtime = uid, gid, target, mtime
        self.xattrs = xattrs or {}
        self.devmajor, self.devminor = devmajor, devminor


def file(name, data=b"", mode=0o644, **kw):
    if isinstance(data, str):
        data = data.encode()
    return Entry(name, "file", data, mode, **kw)


def dir(name, mode=0o755, **kw):  # noqa: A001 - mirrors tar vocabulary
    return Entry(name, "dir", mode=mode, **kw)


def symlink(name, target, **kw):
    return Entry(name, "symlink", target=target, mode=0o777, **kw)


def hardlink(name, target, **kw):
    return Entry(name, "hardlink", target=target, **kw)


def whiteout(path):
    d, b = os.path.split(path)
    return file(os.path.join(d, ".wh." + b))


def opaque(dirpath):
    return file(os.path.join(dirpath, ".wh..wh..opq"))


def tar_bytes(entries):
    """Serialize entries to an uncompressed tar (PAX format, so xattrs fit)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            ti.uname = ti.gname = ""
            if e.xattrs:
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e.xattrs.items()}
            payload = None
            if e.kind == "file":
                ti.type, ti.size, payload = tarfile.REGTYPE, len(e.data), io.BytesIO(e.data)
            elif e.kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e.target
            elif e.kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e.target
            elif e.kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif e.kind == "chardev":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, e.devmajor, e.devminor
            else:
                raise ValueError(e.kind)
            tf.addfile(ti, payload)
    return buf.getvalue()


def busybox_layer(extra=()):
    """A root filesystem layer: busybox-static with applet symlinks, /etc basics."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [dir("bin"), dir("etc"), dir("tmp", mode=0o1777), dir("root", mode=0o700),
               dir("proc"), dir("sys"), dir("dev"), dir("run"), dir("var"),
               file("bin/busybox", bb, mode=0o755),
               file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                    "app:x:1000:1000:app:/home/app:/bin/sh\n"),
               file("etc/group", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")]
    entries += [symlink("bin/" + a, "busybox") for a in APPLETS]
    entries += list(extra)
    return entries


class Layer:
    def __init__(self, entries, compression="gzip"):
        self.raw = tar_bytes(entries)
        self.compression = compression
        if compression == "gzip":
            self.blob = gzip.compress(self.raw, compresslevel=6, mtime=0)
            self.media_type = MT_LAYER_GZIP
        elif compression == "zstd":
            self.blob = subprocess.run(["zstd", "-q", "-c"], input=self.raw,
                                       stdout=subprocess.PIPE, check=True).stdout
            self.media_type = MT_LAYER_ZSTD
        elif compression == "none":
            self.blob = self.raw
            self.media_type = MT_LAYER_TAR
        else:
            raise ValueError(compression)
        self.digest = "sha256:" + hashlib.sha256(self.blob).hexdigest()
        self.diff_id = "sha256:" + hashlib.sha256(self.raw).hexdigest()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OCILayout:
    """Writes an OCI image layout directory that skopeo can read (oci:DIR:TAG)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.manifests = []

    def put(self, data):
        d = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return d

    def add_image(self, layers, tag="latest", config=None, arch="amd64", os_="linux",
                  variant=None, diff_ids=None):
        cfg = {"architecture": arch, "os": os_,
               "config": config if config is not None else {
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers",
                          "diff_ids": diff_ids if diff_ids is not None else [l.diff_id for l in layers]},
               "history": [{"created_by": "berth tests"} for _ in layers]}
        if variant:
            cfg["variant"] = variant
        cfg_bytes = json.dumps(cfg).encode()
        cfg_digest = self.put(cfg_bytes)
        for l in layers:
            self.put(l.blob)
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
                    "layers": [{"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)}
                               for l in layers]}
        mbytes = json.dumps(manifest).encode()
        mdigest = self.put(mbytes)
        desc = {"mediaType": MT_MANIFEST, "digest": mdigest, "size": len(mbytes),
                "annotations": {"org.opencontainers.image.ref.name": tag},
                "platform": {"architecture": arch, "os": os_}}
        if variant:
            desc["platform"]["variant"] = variant
        self.manifests.append(desc)
        self._write_index()
        return mdigest

    def _write_index(self):
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.manifests}, f)


def skopeo_push(layout_dir, tag, registry, repo, all_images=False):
    """Copies oci:layout_dir:tag to the registry as repo:tag (plain HTTP)."""
    cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"]
    if all_images:
        cmd.append("--all")
    cmd += ["oci:%s:%s" % (layout_dir, tag), "docker://%s/%s:%s" % (registry, repo, tag)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def push_image(tmpdir, registry, repo, tag, layers, config=None, **kw):
    """Builds a one-image layout in tmpdir and pushes it; returns the manifest digest."""
    path = os.path.join(str(tmpdir), "layout-%s-%s-%d" % (repo.replace("/", "_"), tag,
                                                          int(time.monotonic_ns())))
    layout = OCILayout(path)
    digest = layout.add_image(layers, tag=tag, config=config, **kw)
    skopeo_push(path, tag, registry, repo)
    shutil.rmtree(path, ignore_errors=True)
    return digest
