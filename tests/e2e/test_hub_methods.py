"""Direct methods: `berth invoke MODULE METHOD JSON` publishes
$iothub/methods/POST/<method>/?$rid=<rid> to the module and prints the
module's answer from $iothub/methods/res/<status>/?$rid=<rid>."""
import json
import subprocess
import time

from hubkit import Module, make_hub  # noqa: F401


def invoke(hub, *args):
    return subprocess.run([hub.berth_bin, "--run", hub.dir, "invoke"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def method_module(hub, name, answer):
    """A module that answers every method call with answer(method, payload)."""
    m = Module(hub, name)
    calls = []

    def on_message(client, userdata, msg):
        if msg.topic.startswith("$iothub/methods/POST/"):
            method = msg.topic.split("/")[3]
            rid = msg.topic.split("$rid=")[1]
            calls.append((method, json.loads(msg.payload)))
            status, body = answer(method, json.loads(msg.payload))
            if status is not None:
                client.publish("$iothub/methods/res/%d/?$rid=%s" % (status, rid), body, 1)

    m.c.on_message = on_message
    m.connect()
    m.subscribe("$iothub/methods/POST/#")
    return m, calls


def answers_ok(hub, name):
    """Positive control: once name answers methods, an invoke succeeds."""
    method_module(hub, name, lambda meth, p: (200, json.dumps({"ok": True})))
    p = invoke(hub, name, "ping", "{}")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"ok": True}


def test_invoke_prints_the_modules_answer(make_hub):
    hub = make_hub(modules={"m": {}})
    m, calls = method_module(hub, "m", lambda meth, p: (200, json.dumps({"done": p["n"] + 1})))
    p = invoke(hub, "m", "increment", '{"n": 41}')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"done": 42}
    assert calls == [("increment", {"n": 41})]


def test_invoke_fails_with_the_modules_error_status(make_hub):
    hub = make_hub(modules={"m": {}})
    method_module(hub, "m", lambda meth, p: (500, json.dumps({"error": "disk full"})))
    p = invoke(hub, "m", "reboot", "{}")
    assert p.returncode == 1
    assert json.loads(p.stdout) == {"error": "disk full"}
    assert b"the module answered status 500" in p.stderr


def test_invoke_times_out_when_the_module_does_not_answer(make_hub):
    hub = make_hub(modules={"m": {}})
    method_module(hub, "m", lambda meth, p: (None, None))
    start = time.monotonic()
    p = invoke(hub, "m", "slow", "{}", "--timeout", "1")
    assert 0.9 < time.monotonic() - start < 10
    assert p.returncode == 1
    assert b"did not answer method slow within 1000 ms (status 504)" in p.stderr


def test_invoke_on_a_module_that_is_not_connected_fails_at_once(make_hub):
    hub = make_hub(modules={"m": {}})
    p = invoke(hub, "m", "reboot", "{}")
    assert p.returncode == 1
    assert b"module m is not connected (status 404)" in p.stderr
    p = invoke(hub, "ghost", "reboot", "{}")
    assert b"module ghost is not deployed (status 404)" in p.stderr
    answers_ok(hub, "m")


def test_invoke_needs_the_module_to_subscribe_to_methods(make_hub):
    hub = make_hub(modules={"m": {}})
    m = Module(hub, "m")
    m.connect()
    p = invoke(hub, "m", "reboot", "{}")
    assert b"has not subscribed to $iothub/methods/POST/#" in p.stderr
    answers_ok(hub, "m")


def test_invoke_refuses_a_payload_that_is_not_json(make_hub):
    hub = make_hub(modules={"m": {}})
    p = invoke(hub, "m", "reboot", "{not json")
    assert p.returncode == 2
    assert b"malformed JSON" in p.stderr
    answers_ok(hub, "m")


def test_answer_from_another_module_does_not_complete_the_call(make_hub):
    hub = make_hub(modules={"m": {}, "other": {}})
    method_module(hub, "m", lambda meth, p: (None, None))
    other = Module(hub, "other")
    other.connect()
    proc = subprocess.Popen([hub.berth_bin, "--run", hub.dir, "invoke", "m", "x", "{}",
                             "--timeout", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hub.wait_log("method x on m (request")
    rid = hub.log_text().split("method x on m (request ")[1].split(")")[0]
    other.publish("$iothub/methods/res/200/?$rid=" + rid, b'{"forged": true}')
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert b"504" in err
    answers_ok(hub, "m")
