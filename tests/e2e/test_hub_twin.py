"""Module twins over MQTT: GET, reported patches (versions, null deletes),
desired patches when a new config changes them, and twins that survive a
hub restart."""
import json
import os

from hubkit import Module, make_hub  # noqa: F401


def twin_module(hub, name="m"):
    m = Module(hub, name)
    m.connect()
    m.subscribe("$iothub/twin/res/#")
    m.subscribe("$iothub/twin/PATCH/properties/desired/#")
    return m


def get_twin(m, rid):
    m.publish("$iothub/twin/GET/?$rid=%s" % rid, b"")
    msg = m.get()
    assert msg.topic == "$iothub/twin/res/200/?$rid=%s" % rid
    return json.loads(msg.payload)


def patch_reported(m, rid, patch):
    m.publish("$iothub/twin/PATCH/properties/reported/?$rid=%s" % rid, json.dumps(patch))
    return m.get()


def test_get_returns_desired_from_the_deployment_and_empty_reported(make_hub):
    hub = make_hub(modules={"m": {"desired": {"interval": 10, "site": {"id": "H1"}}}})
    m = twin_module(hub)
    twin = get_twin(m, "1")
    assert twin["desired"]["interval"] == 10
    assert twin["desired"]["site"] == {"id": "H1"}
    assert twin["desired"]["$version"] == 1
    assert twin["reported"]["$version"] == 1
    meta = twin["desired"]["$metadata"]
    assert meta["$lastUpdated"].endswith("Z")
    assert meta["site"]["id"]["$lastUpdatedVersion"] == 1


def test_reported_patch_answers_204_with_increasing_versions(make_hub):
    hub = make_hub(modules={"m": {}})
    m = twin_module(hub)
    r = patch_reported(m, "a", {"fw": "1.0", "temp": {"max": 30}})
    assert r.topic == "$iothub/twin/res/204/?$rid=a&$version=2"
    r = patch_reported(m, "b", {"temp": {"min": -5}})
    assert r.topic == "$iothub/twin/res/204/?$rid=b&$version=3"
    reported = get_twin(m, "c")["reported"]
    assert reported["fw"] == "1.0"
    assert reported["temp"] == {"max": 30, "min": -5}
    assert reported["$version"] == 3


def test_reported_patch_null_deletes(make_hub):
    hub = make_hub(modules={"m": {}})
    m = twin_module(hub)
    patch_reported(m, "1", {"a": 1, "b": {"c": 2, "d": 3}})
    patch_reported(m, "2", {"a": None, "b": {"c": None}})
    reported = get_twin(m, "3")["reported"]
    assert "a" not in reported
    assert reported["b"] == {"d": 3}


def test_bad_reported_patch_answers_400_and_changes_nothing(make_hub):
    hub = make_hub(modules={"m": {}})
    m = twin_module(hub)
    m.publish("$iothub/twin/PATCH/properties/reported/?$rid=x", b"{not json")
    r = m.get()
    assert r.topic == "$iothub/twin/res/400/?$rid=x"
    assert json.loads(r.payload)["errorCode"] == 400
    m.publish("$iothub/twin/PATCH/properties/reported/?$rid=y", b"[1]")
    assert m.get().topic == "$iothub/twin/res/400/?$rid=y"
    assert get_twin(m, "z")["reported"]["$version"] == 1
    # A good patch is taken.
    assert patch_reported(m, "w", {"ok": 1}).topic.startswith("$iothub/twin/res/204/?$rid=w")
    assert get_twin(m, "v")["reported"]["$version"] == 2


def test_changed_desired_properties_reach_the_module_as_a_patch(make_hub):
    hub = make_hub(modules={"m": {"desired": {"a": 1, "b": 2, "o": {"p": 1}}}, "other": {}})
    m = twin_module(hub)
    hub.modules["m"]["desired"] = {"a": 1, "o": {"p": 1, "q": 2}}
    hub.write_config()
    hub.reload()
    msg = m.get()
    assert msg.topic == "$iothub/twin/PATCH/properties/desired/?$version=2"
    assert json.loads(msg.payload) == {"b": None, "o": {"q": 2}, "$version": 2}
    assert get_twin(m, "1")["desired"]["$version"] == 2
    # A reload that changes nothing sends nothing.
    hub.reload()
    m.nothing(0.3)


def test_twins_survive_a_hub_restart(make_hub):
    hub = make_hub(modules={"m": {"desired": {"a": 1}}})
    m = twin_module(hub)
    patch_reported(m, "1", {"state": "running"})
    before = get_twin(m, "2")
    m.close()
    hub.stop()
    saved = os.path.join(hub.state_dir, "twins", "m.json")
    assert os.stat(saved).st_mode & 0o777 == 0o600
    hub.start()
    m = twin_module(hub)
    after = get_twin(m, "3")
    assert after == before


def test_new_generation_of_a_module_starts_a_new_twin(make_hub):
    hub = make_hub(modules={"m": {}})
    m = twin_module(hub)
    patch_reported(m, "1", {"old": True})
    hub.modules["m"] = {"generation_id": "gen2"}
    hub.write_config()
    hub.reload()
    m = twin_module(hub)
    assert "old" not in get_twin(m, "2")["reported"]


def test_a_twin_full_of_small_reported_properties_survives_a_restart(make_hub):
    hub = make_hub(modules={"m": {}})
    m = twin_module(hub)
    # Many small properties: their $metadata is many times their size.
    reported = {"k%d" % i: 0 for i in range(3300)}
    assert len(json.dumps(reported, separators=(",", ":"))) < 32 * 1024
    r = patch_reported(m, "1", reported)
    assert r.topic == "$iothub/twin/res/204/?$rid=1&$version=2"
    m.close()
    hub.stop()
    hub.start()
    m = twin_module(hub)
    after = get_twin(m, "2")["reported"]
    assert after["$version"] == 2
    assert len(after["$metadata"]) == 3300 + 1  # and $lastUpdated
    assert "starting a new one" not in hub.log_text()


def test_a_saved_twin_that_cannot_be_read_is_kept_aside(make_hub):
    hub = make_hub(modules={"m": {"desired": {"a": 1}}}, start=False)
    os.makedirs(os.path.join(hub.state_dir, "twins"))
    saved = os.path.join(hub.state_dir, "twins", "m.json")
    with open(saved, "w") as f:
        f.write('{"generation_id": "gen1", "desired": {"$version"')
    hub.start()
    hub.wait_log("kept as %s.bad, starting a new one" % saved)
    with open(saved + ".bad") as f:
        assert f.read().startswith('{"generation_id": "gen1"')
    m = twin_module(hub)
    assert get_twin(m, "1")["desired"]["a"] == 1


def test_desired_properties_over_32_kib_refuse_the_new_config(make_hub):
    hub = make_hub(modules={"m": {"desired": {"a": 1}}})
    m = twin_module(hub)
    hub.modules["m"]["desired"] = {"big": "x" * (32 * 1024)}
    hub.write_config()
    hub.reload()
    hub.wait_log("reload refused")
    assert "config.modules.m.desired: 32778 bytes is over the limit of 32768" in hub.log_text()
    assert get_twin(m, "1")["desired"]["a"] == 1
    m.nothing(0.3)
    # Under the limit, the same change reaches the module.
    hub.modules["m"]["desired"] = {"big": "x" * 1024}
    hub.write_config()
    hub.reload()
    assert m.get().topic.startswith("$iothub/twin/PATCH/properties/desired/")
