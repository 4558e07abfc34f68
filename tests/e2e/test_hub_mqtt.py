"""The hub speaks MQTT 3.1.1 to module clients: CONNECT and CONNACK codes,
sessions, take-over, keepalive, wills, and malformed input that closes only
the offending connection. Real clients: paho-mqtt over the Unix socket,
mosquitto_pub/sub with --unix, and raw bytes where a client library would
refuse to send them."""
import struct
import subprocess
import time

from hubkit import (ROUTE_AB, Module, Raw, connect_packet, enc_str, make_hub,  # noqa: F401
                    packet, parse_bag, raw_connect, two_modules, username, wait_for)


def raw_subscribe(r, topic, qos=1, pid=1):
    r.send(packet(0x82, struct.pack(">H", pid) + enc_str(topic) + bytes([qos])))
    first, body = r.recv_packet()
    assert first == 0x90
    return body[2:]


def publish_packet(topic, payload, qos=0, pid=1):
    return packet(0x30 | qos << 1, enc_str(topic) + (struct.pack(">H", pid) if qos else b"") +
                  payload)


def test_mosquitto_clients_carry_a_routed_message(make_hub):
    hub = two_modules(make_hub)
    sub = subprocess.Popen(["mosquitto_sub", "--unix", hub.socket, "-i", hub.device + "/b",
                            "-u", username(hub.device, "b"), "-P", hub.token("b"), "-q", "1",
                            "-t", "devices/%s/modules/b/#" % hub.device, "-C", "1", "-v"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hub.wait_log("subscribed to devices/%s/modules/b/#" % hub.device)
    subprocess.run(["mosquitto_pub", "--unix", hub.socket, "-i", hub.device + "/a",
                    "-u", username(hub.device, "a"), "-P", hub.token("a"), "-q", "1",
                    "-t", "devices/%s/modules/a/messages/events/$.on=out1&k=v" % hub.device,
                    "-m", "hello"], check=True, timeout=10)
    out, err = sub.communicate(timeout=10)
    topic, payload = out.decode().strip().split(" ", 1)
    assert payload == "hello"
    assert topic.startswith("devices/%s/modules/b/inputs/in1/" % hub.device)
    bag = parse_bag(topic, "/inputs/in1/")
    assert bag == {"$.cdid": hub.device, "$.cmid": "a", "k": "v"}


def test_connack_1_for_another_protocol_level(make_hub):
    hub = two_modules(make_hub)
    r = Raw(hub.socket)
    r.send(connect_packet(hub.device + "/a", username(hub.device, "a"), hub.token("a"),
                          level=3))
    assert r.recv_packet() == (0x20, b"\x00\x01")
    assert r.closed_by_peer()
    raw_connect(hub, "a")  # level 4 is accepted


def test_connack_2_for_a_client_id_that_is_not_device_slash_module(make_hub):
    hub = two_modules(make_hub)
    for cid in ["", "a", "OtherDevice/a", hub.device + "/a/x", hub.device + "/"]:
        r = Raw(hub.socket)
        r.send(connect_packet(cid, username(hub.device, "a"), hub.token("a")))
        assert r.recv_packet() == (0x20, b"\x00\x02"), cid
        assert r.closed_by_peer()
    raw_connect(hub, "a")  # "<device>/a" is accepted


def test_connack_4_without_user_name_or_token(make_hub):
    hub = two_modules(make_hub)
    cases = [dict(user=None, password=None), dict(user=username(hub.device, "a"), password=None),
             dict(user="garbage", password=hub.token("a")),
             dict(user="%s/%s/a/?no-version=1" % ("h", hub.device), password=hub.token("a"))]
    for kw in cases:
        r = Raw(hub.socket)
        r.send(connect_packet(hub.device + "/a", **kw))
        assert r.recv_packet() == (0x20, b"\x00\x04"), kw
    assert "no SAS token" in hub.log_text()
    raw_connect(hub, "a")  # with both it gets in


def test_user_name_takes_any_api_version_and_extra_parameters(make_hub):
    hub = two_modules(make_hub)
    for user in ["x/%s/a/?api-version=2021-04-12&DeviceClientType=iothubclient%%2F1.9" % hub.device,
                 "x/%s/a/api-version=2017-06-30" % hub.device]:
        m = Module(hub, "a", user=user)
        m.connect()
        m.close()


def test_connack_5_for_a_module_that_is_not_deployed(make_hub):
    hub = two_modules(make_hub)
    r = Raw(hub.socket)
    r.send(connect_packet(hub.device + "/ghost", username(hub.device, "ghost"),
                          hub.token("ghost")))
    assert r.recv_packet() == (0x20, b"\x00\x05")
    hub.wait_log("module ghost is not deployed")
    raw_connect(hub, "a")  # a deployed module gets in


def test_first_packet_must_be_connect(make_hub):
    hub = two_modules(make_hub)
    r = Raw(hub.socket)
    r.send(packet(0xc0, b""))
    assert r.closed_by_peer()
    hub.wait_log("first packet is PINGREQ, not CONNECT")
    r = raw_connect(hub, "a")  # after a CONNECT, a PINGREQ is answered
    r.send(packet(0xc0, b""))
    assert r.recv_packet() == (0xd0, b"")


def test_second_connect_closes_the_connection(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "a")
    r.send(connect_packet(hub.device + "/a", username(hub.device, "a"), hub.token("a")))
    assert r.closed_by_peer()
    hub.wait_log("second CONNECT")


def test_pingreq_gets_pingresp(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "a")
    r.send(packet(0xc0, b""))
    assert r.recv_packet() == (0xd0, b"")


def garbage_closes_only_that_connection(hub, bad_bytes, connect_first):
    """Another client keeps working, before and after."""
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"before")
    assert b.get().payload == b"before"
    r = raw_connect(hub, "a") if connect_first else Raw(hub.socket)
    r.send(bad_bytes)
    assert r.closed_by_peer()
    # The raw connection took over a's identity: reconnect a as itself.
    a.close()
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"after")
    assert b.get().payload == b"after"
    assert b.disconnects.empty()
    assert hub.proc.poll() is None
    a.close()
    b.close()


def test_garbage_bytes_close_only_that_connection(make_hub):
    hub = two_modules(make_hub)
    garbage_closes_only_that_connection(hub, b"\x00\xff\xfe garbage \x13\x37" * 10, False)
    assert "malformed packet: reserved packet type 0" in hub.log_text()


def test_five_byte_remaining_length_closes_only_that_connection(make_hub):
    hub = two_modules(make_hub)
    garbage_closes_only_that_connection(hub, b"\x30\xff\xff\xff\xff\x01", True)
    assert "remaining length longer than four bytes" in hub.log_text()


def test_oversized_packet_closes_the_connection_before_reading_it(make_hub):
    hub = make_hub(modules={"a": {}}, extra={"max_packet": 4096})
    r = raw_connect(hub, "a")
    r.send(b"\x30" + bytes([0x89, 0x27]))  # announces 5001 bytes, sends none
    assert r.closed_by_peer()
    hub.wait_log("PUBLISH packet of 5001 bytes is over the limit of 4096")


def test_packets_up_to_256_kib_pass_by_default_and_larger_ones_close_the_connection(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    topic = "devices/%s/modules/a/messages/events/$.on=out1" % hub.device
    payload = b"p" * (256 * 1024 - 2 - len(topic) - 2)  # remaining length exactly 256 KiB
    r = raw_connect(hub, "a")
    r.send(publish_packet(topic, payload, qos=1))
    assert r.recv_packet() == (0x40, b"\x00\x01")
    assert b.get().payload == payload
    try:
        r.send(publish_packet(topic, payload + b"p", qos=1))
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed as soon as the hub read the fixed header
    assert r.closed_by_peer()
    hub.wait_log("PUBLISH packet of 262145 bytes is over the limit of 262144")
    assert b.disconnects.empty()


def test_malformed_publish_topics_close_the_connection(make_hub):
    hub = two_modules(make_hub)
    bad = {
        "bad UTF-8": publish_packet(b"devices/\xc0\x80", b"x"),
        "wildcard": publish_packet("devices/+/modules/a/messages/events", b"x"),
        "empty": publish_packet("", b"x"),
        "QoS 2": publish_packet("devices/%s/modules/a/messages/events" % hub.device, b"x", 2),
    }
    for what, data in bad.items():
        r = raw_connect(hub, "a")
        r.send(data)
        assert r.closed_by_peer(), what
    text = hub.log_text()
    assert "topic name is not valid UTF-8" in text
    assert "wildcard in topic name" in text
    assert "empty topic name" in text
    assert "QoS 2, which is not supported" in text


def test_subscribe_grants_qos_2_as_1_and_unsubscribe_is_acknowledged(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b")
    assert raw_subscribe(r, "devices/%s/modules/b/#" % hub.device, qos=2) == b"\x01"
    r.send(packet(0xa2, struct.pack(">H", 7) + enc_str("devices/%s/modules/b/#" % hub.device)))
    assert r.recv_packet() == (0xb0, b"\x00\x07")


def test_suback_answers_each_filter_on_its_own(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "a")
    filters = [("devices/%s/modules/a/inputs/#" % hub.device, 1),
               ("devices/%s/modules/b/inputs/#" % hub.device, 1),  # another module's
               ("$iothub/twin/res/#", 0),
               ("#", 1),
               ("$iothub/methods/POST/#", 2)]
    r.send(packet(0x82, struct.pack(">H", 9) +
                  b"".join(enc_str(f) + bytes([q]) for f, q in filters)))
    assert r.recv_packet() == (0x90, b"\x00\x09" + bytes([1, 0x80, 0, 0x80, 1]))


def test_second_connection_with_the_same_client_id_takes_over(make_hub):
    hub = two_modules(make_hub)
    first = Module(hub, "a")
    first.connect()
    second = Module(hub, "a")
    second.connect()
    wait_for(lambda: not first.disconnects.empty(), 5, what="the first connection to close")
    hub.wait_log("taken over by a new connection")
    second.send("out1", b"still works")
    second.close()


def test_keepalive_closes_a_silent_client_after_one_and_a_half_times(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "a", keepalive=1)
    start = time.monotonic()
    assert r.closed_by_peer(timeout=10)
    took = time.monotonic() - start
    assert 1.4 <= took <= 8.0, took
    hub.wait_log("keepalive: nothing received for 1.5 x 1 s")


def test_will_is_published_when_a_client_vanishes(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    topic = "devices/%s/modules/a/messages/events/$.on=out1" % hub.device
    r = raw_connect(hub, "a", will=(topic, "a is gone", 1))
    r.close()  # no DISCONNECT
    m = b.get()
    assert m.payload == b"a is gone"
    assert parse_bag(m.topic, "/inputs/in1/")["$.cmid"] == "a"


def test_will_is_discarded_on_disconnect(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    topic = "devices/%s/modules/a/messages/events/$.on=out1" % hub.device
    r = raw_connect(hub, "a", will=(topic, "a is gone", 1))
    r.send(packet(0xe0, b""))
    assert r.closed_by_peer()
    b.nothing(0.5)
    r = raw_connect(hub, "a", will=(topic, "a is gone", 1))
    r.close()  # no DISCONNECT this time: the will goes out
    assert b.get().payload == b"a is gone"


def test_will_to_a_topic_the_module_may_not_use_is_not_published(make_hub):
    hub = two_modules(make_hub)
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    r = raw_connect(hub, "a", will=("devices/%s/modules/b/messages/events" % hub.device,
                                    "spoof", 0))
    r.close()
    hub.wait_log("will message to devices/%s/modules/b/messages/events refused" % hub.device)
    # A will on a's own telemetry goes out, along the route.
    r = raw_connect(hub, "a", will=("devices/%s/modules/a/messages/events/$.on=out1" %
                                    hub.device, "a is gone", 1))
    r.close()
    assert b.get().payload == b"a is gone"


def test_clean_session_never_reports_a_session_present(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b", clean=False)
    assert not r.session_present
    r.close()
    r = raw_connect(hub, "b", clean=True)
    assert not r.session_present


def test_persistent_session_redelivers_unacknowledged_messages_with_dup(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b", clean=False)
    assert not r.session_present
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"first")
    first, body = r.recv_packet()
    assert first == 0x32  # QoS 1, DUP 0
    r.close()  # gone without PUBACK
    hub.wait_log("connection closed by the client")
    a.send("out1", b"while away")
    r = raw_connect(hub, "b", clean=False)
    assert r.session_present
    first, body = r.recv_packet()
    assert first == 0x3a, hex(first)  # QoS 1 with DUP: sent again
    tlen = struct.unpack(">H", body[:2])[0]
    pid = body[2 + tlen:4 + tlen]
    assert body[4 + tlen:] == b"first"
    r.send(packet(0x40, pid))
    first, body = r.recv_packet()
    assert first == 0x32  # kept while away, sent for the first time
    assert body.endswith(b"while away")
    # Subscriptions survived too: nothing had to be subscribed again.
    a.close()


def test_clean_session_drops_the_session_state(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b", clean=False)
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    r.close()
    hub.wait_log("connection closed by the client")
    r = raw_connect(hub, "b", clean=True)
    assert not r.session_present
    r.close()
    hub.wait_log("connection closed by the client")
    r = raw_connect(hub, "b", clean=False)
    assert not r.session_present


def test_sockets_are_open_to_modules_and_closed_to_others(make_hub):
    import os
    hub = two_modules(make_hub)
    assert os.stat(hub.socket).st_mode & 0o777 == 0o666
    assert os.stat(hub.control).st_mode & 0o777 == 0o600


def test_listening_socket_handed_over_by_the_daemon_survives_a_hub_restart(make_hub):
    import os
    import socket
    hub = make_hub(modules={"a": {}}, start=False)
    path = os.path.join(hub.dir, "daemon.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    hub.extra = {"socket": None}
    hub.write_config()
    for _ in range(2):
        proc = subprocess.Popen([hub.berth_bin, "hub", "--config", hub.config_path,
                                 "--listen-fd", str(lsock.fileno())], pass_fds=[lsock.fileno()],
                                stderr=subprocess.PIPE)
        m = Module(hub, "a", path=path)
        m.connect()
        m.close()
        proc.terminate()
        assert proc.wait(10) == 0
        assert os.path.exists(path)  # the daemon's socket file stays
    lsock.close()


def test_a_client_that_stops_reading_is_cut_off_without_holding_up_others(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}, "x": {"desired": {"pad": "p" * 4000}}},
                   routes={"ab": ROUTE_AB})
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    x = raw_connect(hub, "x")
    raw_subscribe(x, "$iothub/twin/res/#")
    get = publish_packet("$iothub/twin/GET/?$rid=1", b"")
    x.s.setblocking(False)
    sent = 0
    try:
        for _ in range(5000):  # ~20 MB of answers that x never reads
            x.s.send(get)
            sent += 1
    except BlockingIOError:
        pass
    a.send("out1", b"meanwhile")
    assert b.get().payload == b"meanwhile"
    hub.wait_log("slow consumer")
    assert hub.proc.poll() is None


def test_unacknowledged_messages_of_a_dropped_session_go_to_the_next_one(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b", clean=False)
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    a = Module(hub, "a")
    a.connect()
    a.send("out1", b"never acknowledged")
    assert r.recv_packet()[0] == 0x32
    r.close()
    hub.wait_log("connection closed by the client")
    # A clean session drops the persistent one; its message is delivered anew,
    # even to a SUBSCRIBE that arrives together with the CONNECT.
    r = Raw(hub.socket)
    r.send(connect_packet("%s/b" % hub.device, username(hub.device, "b"), hub.token("b"),
                          clean=True) +
           packet(0x82, struct.pack(">H", 1) + enc_str("devices/%s/modules/b/#" % hub.device) +
                  b"\x01"))
    assert r.recv_packet() == (0x20, b"\x00\x00")
    assert r.recv_packet()[0] == 0x90
    first, body = r.recv_packet()
    assert first == 0x32  # not a DUP: a new session gets it as new
    assert body.endswith(b"never acknowledged")
