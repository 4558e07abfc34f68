"""Deployments through berth daemon: validation before anything changes,
updates that recreate only what changed, and removal that leaves nothing."""
import os

import images
from conftest import wait_for

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import instance_cgroups, cgroup_pids, manifest, module, mounts_mentioning, unique

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
AGENT = "$.modulesContent.$edgeAgent['properties.desired']"


def test_malformed_deployments_are_refused_and_the_old_one_keeps_running(daemons, image):
    a = unique("keep")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    before = d.wait_status(a)
    cases = [
        ("{\"modulesContent\": ", "malformed JSON"),
        (manifest({a: {"settings": {}}}),
         AGENT + ".modules.%s.settings.image: required but missing" % a),
        (manifest({a: {"settings": {"image": image, "createOptions": "{\"Env\": 5}"}}}),
         AGENT + ".modules.%s.settings.createOptions: $.Env: expected an array of strings" % a),
        (manifest({a: module(image, SLEEP, create={"HostConfig": {"Binds": ["vol:/data"]}})}),
         "$.HostConfig.Binds[0]: source \"vol\" must be an absolute host path"),
        (manifest({a: module(image, SLEEP)}, routes={"r1": "FROM /messages/* INTO $upstream",
                                                     "broken": "FROM /messages/* INTO"}),
         "$.modulesContent.$edgeHub['properties.desired'].routes: "),
    ]
    for dep, want in cases:
        p = d.deploy(dep, check=False)
        assert p.returncode == 1, p
        assert want in p.stderr.decode(), p.stderr.decode()
    assert "broken" in d.deploy(cases[-1][0], check=False).stderr.decode()
    m = d.wait_status(a)
    assert m["shimPid"] == before["shimPid"] and m["restartCount"] == 0
    # The control: a well-formed deployment is taken on the same path.
    assert d.deploy(manifest({a: module(image, SLEEP)})).returncode == 0
    assert d.wait_status(a)["shimPid"] == before["shimPid"]


def test_content_wrapper_form_is_deployed(daemons, image):
    a = unique("wrap")
    d = daemons().start()
    d.deploy({"content": manifest({a: module(image, SLEEP)})})
    d.wait_status(a)


def test_env_change_recreates_only_that_module(daemons, image):
    a, b = unique("enva"), unique("envb")
    cmd = ["/bin/sh", "-c", "echo COLOR=$COLOR; exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd, env={"COLOR": "red"}),
                          b: module(image, cmd, env={"COLOR": "red"})})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    d.deploy(manifest({a: module(image, cmd, env={"COLOR": "blue"}),
                       b: module(image, cmd, env={"COLOR": "red"})}))
    d.wait_log(a, "COLOR=blue")
    m2a = d.wait_status(a)
    assert m2a["shimPid"] != ma["shimPid"]
    assert m2a["generationId"] == ma["generationId"], "an update keeps the identity"
    assert d.module(b)["shimPid"] == mb["shimPid"]


def test_removed_module_leaves_nothing_behind(daemons, image):
    a, b = unique("gone"), unique("stay")
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)})).start()
    d.wait_status(a)
    mb = d.wait_status(b)
    # The control: each of what must go is there before the removal.
    assert instance_cgroups(a) and cgroup_pids(a)
    assert os.path.exists(d.instance_dir(a))
    # The instance's mounts are in its own namespace, never in the host's.
    assert mounts_mentioning("/instances/%s/" % a, pid=cgroup_pids(a)[0])
    assert not mounts_mentioning("/instances/%s/" % a)
    assert os.path.exists(os.path.join(d.berth.root, "oci", "leases", a))
    assert os.path.exists(os.path.join(d.berth.run_dir, "modules", a))
    d.deploy(manifest({b: module(image, SLEEP)}))
    d.wait_gone(a)
    assert not os.path.exists(d.instance_dir(a))
    assert not instance_cgroups(a) and not cgroup_pids(a)
    assert not mounts_mentioning("/instances/%s/" % a)
    assert not os.path.exists(os.path.join(d.berth.root, "oci", "leases", a))
    assert not os.path.exists(os.path.join(d.berth.run_dir, "modules", a))
    assert d.module(b)["shimPid"] == mb["shimPid"]


def test_module_deployed_again_gets_a_new_generation(daemons, image):
    a = unique("regen")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    first = d.wait_status(a)["generationId"]
    d.deploy(manifest({}))
    d.wait_gone(a)
    d.deploy(manifest({a: module(image, SLEEP)}))
    assert d.wait_status(a)["generationId"] != first


def test_desired_status_stopped_stops_the_module(daemons, image):
    a = unique("stp")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    assert cgroup_pids(a)
    d.deploy(manifest({a: module(image, SLEEP, status="stopped")}))
    d.wait_status(a, "stopped")
    assert not cgroup_pids(a)


def test_deployment_survives_a_daemon_restart(daemons, image):
    a = unique("pers")
    d = daemons().start()
    d.deploy(manifest({a: module(image, SLEEP)}))
    d.wait_status(a)
    d.terminate()
    d.start()
    d.wait_status(a)


def test_unknown_create_options_are_warned_about(daemons, image):
    a = unique("warn")
    d = daemons().start()
    p = d.deploy(manifest({a: module(image, SLEEP, create={"MacAddress": "02:42:ac:11:00:02"})}))
    assert "createOptions MacAddress is not supported" in p.stderr.decode()
    d.wait_status(a)


def test_image_missing_from_registry_is_reported(daemons, registry):
    a = unique("nimg")
    d = daemons(manifest({a: module("%s/nothing-here:1" % registry.host, SLEEP)})).start()
    m = d.wait_status(a, "backoff", timeout=30)
    assert "nothing-here" in m["statusDescription"]


def test_privileged_is_refused_without_allow_privileged(daemons, image):
    a = unique("priv")
    d = daemons().start()
    p = d.deploy(manifest({a: module(image, SLEEP, create={"HostConfig": {"Privileged": True}})}),
                 check=False)
    assert p.returncode == 1
    assert "HostConfig.Privileged is refused" in p.stderr.decode()
    assert d.module(a) is None
    d.deploy(manifest({a: module(image, SLEEP, create={"HostConfig": {"Privileged": False}})}))
    d.wait_status(a)


def test_deployment_file_change_is_applied_on_sighup_and_an_invalid_one_keeps_the_running_one(
        daemons, image):
    a, b = unique("hupa"), unique("hupb")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    before = d.wait_status(a)
    d.write_deployment(manifest({a: {"settings": {}}}))
    d.proc.send_signal(1)
    wait_for(lambda: "refused deployment" in d.log_text(), 10, what="refusal in the log")
    assert "settings.image: required but missing; the running deployment stays" in d.log_text()
    assert d.wait_status(a)["shimPid"] == before["shimPid"]
    # A valid file on the next SIGHUP is applied.
    d.write_deployment(manifest({b: module(image, SLEEP)}))
    d.proc.send_signal(1)
    d.wait_status(b)
    d.wait_gone(a)


def test_pull_policy_never_needs_the_image_in_the_store(daemons, registry):
    a, b = unique("never"), unique("oncreate")
    ref = "%s/busybox:not-pulled" % registry.host
    never = module(ref, SLEEP, pull="never")
    d = daemons(manifest({a: never}), restart_backoff_unit_ms=0).start()
    m = d.wait_status(a, "failed", timeout=30)
    assert "imagePullPolicy is never" in m["statusDescription"]
    # The control: a module of the same image under the default policy pulls it.
    d.deploy(manifest({a: never, b: module(ref, SLEEP)}))
    wait_for(lambda: "module %s: pulling %s" % (b, ref) in d.log_text(), 20,
             what="the other module's pull")
    assert "module %s: pulling" % a not in d.log_text()


def test_image_change_recreates_the_module_with_the_new_image(daemons, image, registry,
                                                              tmp_path):
    layer = images.Layer(images.busybox_layer([images.file("etc/flavour", "two\n")]))
    images.push_image(tmp_path, registry.host, "busybox", "flavour2", [layer])
    a = unique("img")
    cmd = ["/bin/sh", "-c", "echo flavour=$(cat /etc/flavour 2>/dev/null || echo one); "
           "exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd)})).start()
    first = d.wait_status(a)
    d.wait_log(a, "flavour=one")
    d.deploy(manifest({a: module("%s/busybox:flavour2" % registry.host, cmd)}))
    d.wait_log(a, "flavour=two")
    m = d.wait_status(a)
    assert m["shimPid"] != first["shimPid"]
    assert m["imageDigest"] != first["imageDigest"]
    assert m["generationId"] == first["generationId"]


def test_restart_keeps_berth_deploy_until_the_deployment_file_changes(daemons, image):
    from_file, from_cli, edited = unique("file"), unique("cli"), unique("edit")
    d = daemons(manifest({from_file: module(image, SLEEP)})).start()
    d.wait_status(from_file)
    d.deploy(manifest({from_cli: module(image, SLEEP)}))
    d.wait_status(from_cli)
    d.terminate()
    d.start()  # the file is as it was: the deployment from berth deploy stays
    d.wait_status(from_cli)
    assert d.module(from_file) is None
    d.terminate()
    d.write_deployment(manifest({edited: module(image, SLEEP)}))
    d.start()  # the file changed while the daemon was down: it wins
    d.wait_status(edited)
    d.wait_gone(from_cli)
