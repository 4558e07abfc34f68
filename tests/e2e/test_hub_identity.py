"""Who may connect as which module, and what a module may do: SAS tokens
signed with the module's key (computed here from the IoT Hub definition),
the Unix-socket peer's cgroup bound to its instance, and access control on
publish and subscribe."""
import os
import secrets
import subprocess

import pytest

from hubkit import (HOSTNAME, Module, make_hub, module_key, parse_bag, sas_token,  # noqa: F401
                    two_modules, username, wait_for)


def test_borrowed_token_is_refused_and_logged(make_hub):
    hub = two_modules(make_hub)
    m = Module(hub, "b", token=hub.token("a"))
    m.connect(expect=5)
    hub.wait_log("%s/b (pid %d): CONNECT refused (code 5): token refused: token is for "
                 "%s/devices/%s/modules/a" % (hub.device, os.getpid(), HOSTNAME, hub.device))
    Module(hub, "b").connect()  # with its own token it gets in


def test_missing_token_is_refused(make_hub):
    hub = two_modules(make_hub)
    m = Module(hub, "a", token="")
    m.connect(expect=4)
    hub.wait_log("no SAS token as password")
    Module(hub, "a").connect()


def test_expired_token_is_refused(make_hub):
    hub = two_modules(make_hub)
    m = Module(hub, "a", token=hub.token("a", ttl=-10))
    m.connect(expect=5)
    hub.wait_log("token expired")
    Module(hub, "a", token=hub.token("a", ttl=60)).connect()


def test_token_signed_with_another_key_is_refused(make_hub):
    hub = two_modules(make_hub)
    resource = "%s/devices/%s/modules/a" % (HOSTNAME, hub.device)
    forged = sas_token(module_key("a", "gen1", device_key="A" * 43 + "="), resource, 4000000000)
    Module(hub, "a", token=forged).connect(expect=5)
    hub.wait_log("token signature does not match")
    Module(hub, "a", token=sas_token(module_key("a", "gen1"), resource, 4000000000)).connect()


def test_user_name_must_name_the_client_ids_module(make_hub):
    hub = two_modules(make_hub)
    Module(hub, "a", user=username(hub.device, "b"), token=hub.token("a")).connect(expect=4)
    hub.wait_log("user name names b, not the client id's module a")
    Module(hub, "a", user=username(hub.device, "a"), token=hub.token("a")).connect()


def test_new_generation_revokes_old_tokens_and_connections(make_hub):
    hub = two_modules(make_hub)
    old_token = hub.token("a")
    a = Module(hub, "a", token=old_token)
    a.connect()
    hub.modules["a"] = {"generation_id": "gen2"}
    hub.write_config()
    hub.reload()
    wait_for(lambda: not a.disconnects.empty(), 5, what="a's connection to close")
    hub.wait_log("identity removed or changed by the new config")
    Module(hub, "a", token=old_token).connect(expect=5)
    Module(hub, "a", token=hub.token("a")).connect()


def test_removed_module_can_no_longer_connect(make_hub):
    hub = two_modules(make_hub)
    Module(hub, "b").connect()
    del hub.modules["b"]
    hub.write_config()
    hub.reload()
    Module(hub, "b").connect(expect=5)
    Module(hub, "a").connect()  # the module that stays still gets in


def test_module_cannot_subscribe_to_another_modules_inputs(make_hub):
    hub = two_modules(make_hub)
    a = Module(hub, "a")
    a.connect()
    assert a.subscribe("devices/%s/modules/b/#" % hub.device) == (128,)
    assert a.subscribe("devices/%s/modules/+/inputs/#" % hub.device) == (128,)
    assert a.subscribe("#") == (128,)
    assert a.subscribe("$iothub/#") == (128,)
    hub.wait_log("%s/a (pid %d): SUBSCRIBE to devices/%s/modules/b/# refused" %
                 (hub.device, os.getpid(), hub.device))
    # Its own topics are fine.
    assert a.subscribe("devices/%s/modules/a/inputs/#" % hub.device) == (1,)
    assert a.subscribe("$iothub/twin/res/#", 0) == (0,)
    assert a.subscribe("$iothub/twin/PATCH/properties/desired/#") == (1,)
    assert a.subscribe("$iothub/methods/POST/#") == (1,)


def test_module_cannot_publish_as_another(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    a.c.publish("devices/%s/modules/b/messages/events/$.on=out1" % hub.device, b"spoof", 1)
    wait_for(lambda: not a.disconnects.empty(), 5, what="a's connection to close")
    hub.wait_log("%s/a (pid %d): PUBLISH to devices/%s/modules/b/messages/events/$.on=out1 "
                 "refused" % (hub.device, os.getpid(), hub.device))
    b.nothing(0.3)
    # Sent as itself, a's message reaches b.
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"own")
    assert b.get().payload == b"own"


def test_module_cannot_publish_to_other_topics(make_hub):
    hub = two_modules(make_hub)
    for topic in ["devices/%s/messages/events" % hub.device, "anything", "$iothub/methods/POST/x"]:
        a = Module(hub, "a")
        a.connect()
        a.c.publish(topic, b"x", 0)
        wait_for(lambda: not a.disconnects.empty(), 5, what="the connection to close")
    # Its own telemetry topic keeps the connection: the publish is answered.
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"x")
    assert a.disconnects.empty()


def test_sender_identity_in_the_bag_is_replaced_by_the_authenticated_one(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"x", {"$.cdid": "OtherDevice", "$.cmid": "b"})
    bag = parse_bag(b.get().topic, "/inputs/in1/")
    assert bag["$.cdid"] == hub.device
    assert bag["$.cmid"] == "a"


# ---- the Unix-socket peer is bound to its instance ----

def cgroup_dirs():
    """Where an instance's cgroup lives on this host (v2, hybrid or v1)."""
    dirs = []
    for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]:
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            dirs.append(root)
            break
    for ctrl in ["pids", "memory"]:
        root = os.path.join("/sys/fs/cgroup", ctrl)
        if os.path.exists(os.path.join(root, "cgroup.procs")):
            dirs.append(root)
    return dirs


@pytest.fixture
def instance_cgroup():
    """Creates berth/<name> cgroups standing for a module instance."""
    made = []

    def make(name):
        roots = cgroup_dirs()
        if os.geteuid() != 0 or not roots:
            pytest.fail("needs root and a cgroup file system")
        paths = []
        for root in roots:
            p = os.path.join(root, "berth", name)
            os.makedirs(p)
            made.append(p)
            paths.append(p)
        return paths

    yield make
    for p in reversed(made):
        wait_for(lambda: not open(os.path.join(p, "cgroup.procs")).read().strip(), 5,
                 what="the cgroup to empty")
        os.rmdir(p)


def run_in_cgroup(paths, argv):
    def enter():
        for p in paths:
            with open(os.path.join(p, "cgroup.procs"), "w") as f:
                f.write("0")
    return subprocess.run(argv, preexec_fn=enter, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=20)


def mosquitto_pub_as(hub, module, token):
    return ["mosquitto_pub", "--unix", hub.socket, "-i", "%s/%s" % (hub.device, module),
            "-u", username(hub.device, module), "-P", token, "-q", "1",
            "-t", "devices/%s/modules/%s/messages/events" % (hub.device, module), "-m", "x"]


def test_process_of_one_instance_cannot_use_another_modules_token(make_hub, instance_cgroup):
    suffix = secrets.token_hex(4)
    ma, mb = "peera-" + suffix, "peerb-" + suffix
    hub = make_hub(modules={ma: {}, mb: {}})
    paths = instance_cgroup(ma)
    p = run_in_cgroup(paths, mosquitto_pub_as(hub, mb, hub.token(mb)))
    assert p.returncode != 0
    assert b"not authori" in p.stderr
    hub.wait_log("a process of instance %s presented module %s's token" % (ma, mb))
    # The same process with its own module's token is welcome.
    p = run_in_cgroup(paths, mosquitto_pub_as(hub, ma, hub.token(ma)))
    assert p.returncode == 0, p.stderr


def test_nothing_after_a_refused_connect_is_read(make_hub):
    from hubkit import Raw, connect_packet
    hub = two_modules(make_hub)
    r = Raw(hub.socket)
    bad = connect_packet(hub.device + "/a", username(hub.device, "a"), hub.token("b"))
    good = connect_packet(hub.device + "/a", username(hub.device, "a"), hub.token("a"))
    r.send(bad + good)
    assert r.recv_packet() == (0x20, b"\x00\x05")
    assert r.closed_by_peer()
    assert hub.log_text().count("connected (") == 0
