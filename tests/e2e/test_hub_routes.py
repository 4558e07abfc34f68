"""Routing between modules through the hub: routes with WHERE conditions on
application properties and on JSON bodies deliver exactly the matching
messages, with the sender's identity; messages wait in the store for a
module that is away, within their time to live and in priority order; a
new config swaps routes without dropping a connection."""
import json
import subprocess
import time

from hubkit import Module, make_hub, parse_bag  # noqa: F401


def receiver(hub, name="b"):
    m = Module(hub, name)
    m.connect()
    m.subscribe("devices/%s/modules/%s/#" % (hub.device, name))
    return m


def sender(hub, name="a"):
    m = Module(hub, name)
    m.connect()
    return m


def received(m, n, timeout=5):
    return [m.get(timeout) for _ in range(n)]


def test_where_on_an_application_property_delivers_only_matching_messages(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "alerts": "FROM /messages/modules/a/outputs/* WHERE level = 'alert' "
                  "INTO BrokeredEndpoint(\"/modules/b/inputs/alerts\")"})
    b, a = receiver(hub), sender(hub)
    a.send("out1", b"1", {"level": "alert"})
    a.send("out1", b"2", {"level": "info"})
    a.send("out1", b"3")
    a.send("out2", b"4", {"level": "alert", "site": "H1"})
    got = received(b, 2)
    b.nothing(0.5)
    assert [m.payload for m in got] == [b"1", b"4"]
    for m in got:
        assert m.topic.startswith("devices/%s/modules/b/inputs/alerts/" % hub.device)
    bag = parse_bag(got[1].topic, "/inputs/alerts/")
    assert bag == {"$.cdid": hub.device, "$.cmid": "a", "level": "alert", "site": "H1"}


def test_where_on_the_json_body_delivers_only_matching_messages(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "hot": "FROM /messages/modules/a/* WHERE $body.reading.temp > 30 "
               "INTO BrokeredEndpoint(\"/modules/b/inputs/hot\")"})
    b, a = receiver(hub), sender(hub)
    json_props = {"$.ct": "application/json", "$.ce": "utf-8"}
    a.send("t", json.dumps({"reading": {"temp": 25}}), json_props)
    a.send("t", json.dumps({"reading": {"temp": 35}}), json_props)
    a.send("t", json.dumps({"reading": {"temp": 40}}))  # not declared as JSON
    a.send("t", b"{not json", json_props)
    got = received(b, 1)
    b.nothing(0.5)
    assert json.loads(got[0].payload) == {"reading": {"temp": 35}}
    bag = parse_bag(got[0].topic, "/inputs/hot/")
    assert bag["$.ct"] == "application/json"
    assert bag["$.ce"] == "utf-8"


def test_routes_in_any_case_with_edgehub_tokens_route_the_same_messages(make_hub):
    # edgeHub reads SELECT FROM WHERE INTO AND OR NOT in any case, hex
    # numbers, <> and ??: routes written so route here as they do there.
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "lower": "FROM /messages/modules/a/outputs/o1 WHERE a = 'x' and b = 'y' "
                 "INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")",
        "mixed": "select * from /messages/modules/a/outputs/o2 "
                 "Where level = 'alert' AnD not (site <> 'H1') "
                 "oR as_number(code ?? '0') = 0x1F /* a comment */ "
                 "into brokeredendpoint('/modules/b/inputs/in2')"})
    b, a = receiver(hub), sender(hub)
    a.send("o1", b"1", {"a": "x", "b": "y"})
    a.send("o1", b"2", {"a": "x", "b": "z"})
    a.send("o2", b"3", {"level": "alert", "site": "H1"})
    a.send("o2", b"4", {"level": "alert", "site": "H2"})
    a.send("o2", b"5", {"code": "31"})
    a.send("o2", b"6", {"level": "info", "site": "H1", "code": "30"})
    got = received(b, 3)
    b.nothing(0.5)
    assert [m.payload for m in got] == [b"1", b"3", b"5"]
    assert got[0].topic.startswith("devices/%s/modules/b/inputs/in1/" % hub.device)
    assert got[2].topic.startswith("devices/%s/modules/b/inputs/in2/" % hub.device)


def test_mosquitto_clients_route_through_a_where_condition(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "r": "FROM /messages/modules/a/outputs/out1 WHERE kind = 'x' "
             "INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    from hubkit import username
    sub = subprocess.Popen(["mosquitto_sub", "--unix", hub.socket, "-i", hub.device + "/b",
                            "-u", username(hub.device, "b"), "-P", hub.token("b"), "-q", "1",
                            "-t", "devices/%s/modules/b/#" % hub.device, "-C", "1"],
                           stdout=subprocess.PIPE)
    hub.wait_log("subscribed to devices/%s/modules/b/#" % hub.device)
    for kind, body in [("y", "skip"), ("x", "take")]:
        subprocess.run(["mosquitto_pub", "--unix", hub.socket, "-i", hub.device + "/a",
                        "-u", username(hub.device, "a"), "-P", hub.token("a"), "-q", "1",
                        "-t", "devices/%s/modules/a/messages/events/$.on=out1&kind=%s" %
                        (hub.device, kind), "-m", body], check=True, timeout=10)
    out, _ = sub.communicate(timeout=10)
    assert out == b"take\n"


def test_output_name_is_not_passed_to_the_receiver(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "r": "FROM /messages/modules/a/outputs/out1 INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    b, a = receiver(hub), sender(hub)
    a.send("out1", b"x", {"$.mid": "m-1", "$.cid": "c-1"})
    bag = parse_bag(b.get().topic, "/inputs/in1/")
    assert "$.on" not in bag
    assert bag["$.mid"] == "m-1"
    assert bag["$.cid"] == "c-1"


def test_messages_wait_for_a_module_that_is_away(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "r": "FROM /messages/modules/a/* INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    a = sender(hub)
    for i in range(5):
        a.send("o", str(i).encode())
    status = hub.control_call({"op": "status"})
    assert status["queues"]["/modules/b/inputs/in1"]["messages"] == 5
    b = receiver(hub)
    assert [m.payload for m in received(b, 5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_messages_past_their_time_to_live_are_not_delivered(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "short": {"route": "FROM /messages/modules/a/outputs/short "
                           "INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")",
                  "timeToLiveSecs": 1},
        "long": "FROM /messages/modules/a/outputs/long "
                "INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    a = sender(hub)
    a.send("short", b"expires")
    a.send("long", b"stays")
    time.sleep(1.5)
    b = receiver(hub)
    assert b.get().payload == b"stays"
    b.nothing(0.5)


def test_higher_priority_routes_deliver_first(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "low": {"route": "FROM /messages/modules/a/outputs/low "
                         "INTO BrokeredEndpoint(\"/modules/b/inputs/low\")", "priority": 7},
        "high": {"route": "FROM /messages/modules/a/outputs/high "
                          "INTO BrokeredEndpoint(\"/modules/b/inputs/high\")", "priority": 0}})
    a = sender(hub)
    a.send("low", b"low-1")
    a.send("low", b"low-2")
    a.send("high", b"high-1")
    b = receiver(hub)
    assert [m.payload for m in received(b, 3)] == [b"high-1", b"low-1", b"low-2"]


def test_upstream_route_keeps_messages_in_the_upstream_queue(make_hub):
    hub = make_hub(modules={"a": {}}, routes={"up": "FROM /messages/* INTO $upstream"})
    a = sender(hub)
    a.send("o", b"1")
    a.send("o", b"2")
    status = hub.control_call({"op": "status"})
    assert status["queues"]["$upstream"]["messages"] == 2


def test_new_routes_apply_without_dropping_connections(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "r": "FROM /messages/modules/a/outputs/one INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    b, a = receiver(hub), sender(hub)
    a.send("two", b"before")
    b.nothing(0.3)
    hub.routes = {"r": "FROM /messages/modules/a/outputs/two "
                       "INTO BrokeredEndpoint(\"/modules/b/inputs/in2\")"}
    hub.write_config()
    hub.reload()
    a.send("two", b"after")
    m = b.get()
    assert m.payload == b"after"
    assert "/inputs/in2/" in m.topic
    assert a.disconnects.empty() and b.disconnects.empty()


def test_a_route_that_does_not_parse_is_reported_with_its_name(make_hub):
    hub = make_hub(modules={"a": {}}, routes={"ok": "FROM /* INTO $upstream"})
    a = sender(hub)
    hub.routes = {"broken": "FROM /* WHERE INTO $upstream"}
    hub.write_config()
    hub.reload()
    text = hub.log_text()
    assert "reload refused" in text
    assert "broken" in text.split("reload refused")[1]
    assert "position" in text.split("reload refused")[1]
    a.send("o", b"still routed by the old table")
    assert hub.control_call({"op": "status"})["queues"]["$upstream"]["messages"] == 1
    hub.stop()
    p = subprocess.run([hub.berth_bin, "hub", "--config", hub.config_path],
                       stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 1
    assert b"broken" in p.stderr


def test_an_input_nobody_subscribed_to_waits_without_holding_up_the_others(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "one": "FROM /messages/modules/a/outputs/one INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")",
        "two": {"route": "FROM /messages/modules/a/outputs/two "
                         "INTO BrokeredEndpoint(\"/modules/b/inputs/in2\")", "priority": 0}})
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/inputs/in1/#" % hub.device)
    a = sender(hub)
    a.send("two", b"for in2")
    a.send("one", b"for in1")
    assert b.get().payload == b"for in1"
    b.nothing(0.3)
    b.subscribe("devices/%s/modules/b/inputs/in2/#" % hub.device)
    assert b.get().payload == b"for in2"


def test_a_new_default_time_to_live_applies_after_a_reload(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "r": "FROM /messages/modules/a/* INTO BrokeredEndpoint(\"/modules/b/inputs/in1\")"})
    a = sender(hub)
    a.send("o", b"kept")  # stored under the old default of 7200 s
    hub.extra = {"default_ttl_secs": 1}
    hub.write_config()
    hub.reload()
    a.send("o", b"expires")
    time.sleep(1.5)
    b = receiver(hub)
    # The same route to the same receiver delivers what has not expired.
    assert b.get().payload == b"kept"
    b.nothing(0.5)
