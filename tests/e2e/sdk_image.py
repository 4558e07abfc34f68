"""An IoT Edge module image made of this machine's Node.js and the Azure IoT
Node SDK, as a user would build one from node:18 and `npm install
azure-iot-device azure-iot-device-mqtt`: the node binary and the shared
libraries `ldd` lists for it, the SDK's package tree from tests/iothub (what
tests/install-deps.sh installs with `npm ci`, only the packages the two SDK
packages need), and tests/e2e/sdk_module.js as the program."""
import json
import os
import re
import shutil
import subprocess

import images

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_TREE = os.path.join(HERE, "..", "iothub")
SDK_PACKAGES = ("azure-iot-device", "azure-iot-device-mqtt")
# What a module never reads at run time.
SKIP = re.compile(r"(\.md|\.map|\.d\.ts|\.ts|LICENSE|\.markdown)$|/(test|tests|docs?|samples?)/")


def node_binary():
    node = shutil.which("node")
    assert node, "node is not installed (tests/install-deps.sh installs it)"
    return os.path.realpath(node)


def shared_libraries(binary):
    """The paths ldd resolves for binary, the program interpreter included."""
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, check=True).stdout.decode()
    libs = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def sdk_package_dirs():
    """node_modules/<pkg> directories the SDK packages need, from the lock
    file (npm's resolution: the nearest node_modules going up)."""
    with open(os.path.join(NPM_TREE, "package-lock.json")) as f:
        packages = json.load(f)["packages"]

    def resolve(frm, name):
        base = frm
        while True:
            p = (base + "/" if base else "") + "node_modules/" + name
            if p in packages:
                return p
            if not base:
                return None
            i = base.rfind("/node_modules/")
            base = base[:i] if i >= 0 else ""

    seen, todo = set(), ["node_modules/" + p for p in SDK_PACKAGES]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for dep in packages[p].get("dependencies", {}):
            r = resolve(p, dep)
            if r:
                todo.append(r)
    return sorted(seen)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def node_sdk_layer_entries(program):
    entries = [images.dir(d) for d in ("app", "bin", "etc", "lib", "lib64", "proc", "sys", "dev",
                                       "run", "tmp", "usr", "usr/bin", "var")]
    entries.append(images.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                               "app:x:1000:1000:app:/app:/bin/sh\n"))
    entries.append(images.file("etc/group", "root:x:0:\napp:x:1000:\n"))
    node = node_binary()
    entries.append(images.file("usr/bin/node", _read(node), mode=0o755))
    dirs = {"app", "bin", "etc", "lib", "lib64", "proc", "sys", "dev", "run", "tmp", "usr",
            "usr/bin", "var"}
    for lib in shared_libraries(node):
        rel = lib.lstrip("/")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entries.append(images.dir(d))
        entries.append(images.file(rel, _read(os.path.realpath(lib)), mode=0o755))
    root = os.path.realpath(NPM_TREE)
    for pkg in sdk_package_dirs():
        top = os.path.join(root, pkg)
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = os.path.relpath(dirpath, root)
            # Packages nested under this one are in the list on their own.
            dirnames[:] = [d for d in dirnames if d != "node_modules"]
            parts = ("app/" + rel_dir).split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    entries.append(images.dir(d))
            for fn in filenames:
                rel = os.path.join(rel_dir, fn)
                if SKIP.search("/" + rel):
                    continue
                path = os.path.join(dirpath, fn)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                entries.append(images.file("app/" + rel, _read(path)))
    entries.append(images.file("app/module.js", _read(program)))
    return entries


def push_node_sdk_image(tmpdir, registry, repo="sdk-node", tag="1"):
    """Builds and pushes the image; its reference."""
    layer = images.Layer(node_sdk_layer_entries(os.path.join(HERE, "sdk_module.js")),
                         compression="none")
    config = {"Env": ["PATH=/usr/bin:/bin", "NODE_ENV=production"],
              "Entrypoint": ["/usr/bin/node", "/app/module.js"], "WorkingDir": "/app"}
    images.push_image(tmpdir, registry.host, repo, tag, [layer], config=config)
    return "%s/%s:%s" % (registry.host, repo, tag)
