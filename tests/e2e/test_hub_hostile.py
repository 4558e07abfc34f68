"""A hostile client cannot exhaust the hub: not its file descriptors, not
its memory (before or after CONNECT), not its event loop. Each test opens
the attack from the hub's Unix socket, as any process in any instance could,
and then checks that a well-behaved module still gets its service."""
import resource
import socket
import struct
import time

from hubkit import (Module, Raw, connect_packet, enc_str, make_hub, packet,  # noqa: F401
                    raw_connect, remaining_length, username, wait_for)


def subscribe(r, filters, pid=1, qos=1):
    """SUBACK return codes for one SUBSCRIBE of these filters."""
    body = struct.pack(">H", pid) + b"".join(enc_str(f) + bytes([qos]) for f in filters)
    r.send(packet(0x82, body))
    first, ack = r.recv_packet()
    assert first == 0x90 and ack[:2] == struct.pack(">H", pid)
    return list(ack[2:])


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))


def test_running_out_of_descriptors_pauses_accepting_instead_of_spinning(make_hub):
    hub = make_hub(modules={"a": {}}, preexec_fn=low_fd_limit)
    socks = []
    for _ in range(30):  # more than the hub has descriptors for
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hub.socket)
        socks.append(s)
    hub.wait_log("Too many open files; not accepting connections for a moment")
    before = hub.cpu_seconds()
    time.sleep(1.5)
    assert hub.cpu_seconds() - before < 0.3
    assert hub.log_text().count("Too many open files") <= 10
    for s in socks:
        s.close()
    m = Module(hub, "a")
    m.connect()
    m.close()


def test_a_session_holds_at_most_64_subscriptions(make_hub):
    hub = make_hub(modules={"a": {}})
    r = raw_connect(hub, "a")
    own = "devices/%s/modules/a/inputs/" % hub.device
    assert subscribe(r, [own + "in%d/#" % i for i in range(64)]) == [1] * 64
    assert subscribe(r, [own + "one-more/#"], pid=2) == [0x80]
    hub.wait_log("SUBSCRIBE to %sone-more/# refused: the session already has 64 "
                 "subscriptions" % own)
    # The same filter again replaces its subscription; it takes no new room.
    assert subscribe(r, [own + "in5/#"], pid=3) == [1]
    r.send(packet(0xa2, struct.pack(">H", 4) + enc_str(own + "in5/#")))
    assert r.recv_packet() == (0xb0, struct.pack(">H", 4))
    assert subscribe(r, [own + "one-more/#"], pid=5) == [1]
    assert hub.control_call({"op": "status"})["clients"][0]["subscriptions"] == 64


def test_a_topic_filter_over_1024_bytes_is_refused(make_hub):
    hub = make_hub(modules={"a": {}})
    r = raw_connect(hub, "a")
    own = "devices/%s/modules/a/inputs/" % hub.device
    long_filter = own + "x" * (1025 - len(own))
    assert subscribe(r, [long_filter, long_filter[:-1]]) == [0x80, 1]
    hub.wait_log("SUBSCRIBE to a filter of 1025 bytes refused: the limit is 1024")


def test_connections_that_never_finish_connect_hold_a_bounded_amount_of_memory(make_hub):
    hub = make_hub(modules={"a": {}})
    before = hub.rss_kib()
    socks = []
    for _ in range(200):  # each announces a 250 kB CONNECT and sends most of it
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hub.socket)
        s.settimeout(5)
        try:
            s.sendall(b"\x10" + remaining_length(250000) + b"\0" * 200000)
        except OSError:
            pass  # closed by the hub once the budget was spent
        socks.append(s)
    hub.wait_log("connections not yet accepted already hold the 4096 KiB the hub gives them")
    held = hub.control_call({"op": "status"})["input_buffered_before_connect"]
    assert 0 < held <= 4 * 1024 * 1024 + 200 * 2048
    # Without the bound the hub would hold the 40 MB sent (even more under ASan).
    assert hub.rss_kib() - before < 24 * 1024
    m = Module(hub, "a")  # a module's small CONNECT still gets through
    m.connect()
    m.close()
    for s in socks:
        s.close()
    # Once the budget is free again, a CONNECT with a 60 kB will is fine too.
    wait_for(lambda: hub.control_call({"op": "status"})["input_buffered_before_connect"] == 0,
             5, what="the connections to close")
    r = Raw(hub.socket)
    will = ("devices/%s/modules/a/messages/events" % hub.device, "w" * 60000, 1)
    r.send(connect_packet("%s/a" % hub.device, username(hub.device, "a"), hub.token("a"),
                          will=will))
    assert r.recv_packet() == (0x20, b"\x00\x00")


def test_a_burst_of_reported_patches_is_saved_once_per_loop_turn(make_hub):
    import json
    hub = make_hub(modules={"a": {}})
    r = raw_connect(hub, "a")
    assert subscribe(r, ["$iothub/twin/res/#"], qos=0) == [0]
    burst = b"".join(
        packet(0x30, enc_str("$iothub/twin/PATCH/properties/reported/?$rid=%d" % i) +
               json.dumps({"n": i, "k%d" % (i % 10): i}).encode())
        for i in range(300))
    r.send(burst)
    for i in range(300):
        first, body = r.recv_packet()
        assert first & 0xf0 == 0x30
        topic = body[2:2 + struct.unpack(">H", body[:2])[0]].decode()
        assert topic == "$iothub/twin/res/204/?$rid=%d&$version=%d" % (i, i + 2)
    # Every patch was answered, but the twin file was not written 300 times.
    saves = hub.log_text().count("twin of a saved")
    assert 1 <= saves <= 30, saves
    r.close()
    hub.stop()
    hub.start()
    m = Module(hub, "a")
    m.connect()
    m.subscribe("$iothub/twin/res/#")
    m.publish("$iothub/twin/GET/?$rid=x", b"")
    reported = json.loads(m.get().payload)["reported"]
    assert reported["$version"] == 301
    assert reported["n"] == 299
    m.close()


def test_a_client_id_with_a_newline_cannot_forge_a_log_line(make_hub):
    hub = make_hub(modules={"a": {}})
    r = Raw(hub.socket)
    r.send(connect_packet("%s/a\nhub[1]: info: Hannover01/b connected" % hub.device,
                          username(hub.device, "a"), hub.token("a")))
    assert r.recv_packet() == (0x20, b"\x00\x02")
    hub.wait_log("?hub[1]: info: Hannover01/b connected")
    assert not any(line.startswith("hub[1]") for line in hub.log_text().splitlines())


def test_a_message_whose_topic_would_not_fit_the_receiver_is_refused_from_the_sender(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "ab": 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")'})
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    # 56 kB of '!' fit the sender's topic; percent-encoded for b they would
    # take 168 kB, more than an MQTT topic can hold.
    bag = "&".join("k%d=%s" % (i, "!" * 8000) for i in range(7))
    r = raw_connect(hub, "a")
    r.send(packet(0x32, enc_str("devices/%s/modules/a/messages/events/%s" % (hub.device, bag)) +
                  struct.pack(">H", 1) + b"poison"))
    assert r.closed_by_peer()
    hub.wait_log("its properties would make the topic to /modules/b/inputs/in1 ")
    a = Module(hub, "a")
    a.connect()
    a.send("out", b"fine", {"k": "!" * 100})
    m = b.get()
    assert m.payload == b"fine"
    assert b.disconnects.empty()


def test_repeated_refusals_cannot_flood_the_log(make_hub):
    hub = make_hub(modules={"a": {}})
    r = raw_connect(hub, "a")
    for pid in range(1, 101):
        assert subscribe(r, ["#"], pid=pid) == [0x80]
    text = hub.log_text()
    warnings = [line for line in text.splitlines()
                if ": warning: " in line and "SUBSCRIBE to # refused" in line]
    assert len(warnings) == 20
    assert warnings[-1].endswith("(further refusals on this connection are logged at debug level)")
    assert text.count("SUBSCRIBE to # refused") == 100  # the rest at debug level


def test_messages_of_a_sender_gone_before_its_pubacks_are_still_delivered(make_hub):
    hub = make_hub(modules={"a": {}, "b": {}}, routes={
        "ab": 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")'})
    b = Module(hub, "b")
    b.connect()
    b.subscribe("devices/%s/modules/b/#" % hub.device)
    topic = "devices/%s/modules/a/messages/events/$.on=o" % hub.device
    pubacks = []
    for round_ in range(5):
        # CONNECT, 50 QoS 1 messages and the end of the input at once: the hub
        # mostly reads the end before the store completes the appends, so the
        # connection is gone when their PUBACKs are due.
        r = Raw(hub.socket)
        r.send(connect_packet("%s/a" % hub.device, username(hub.device, "a"), hub.token("a")) +
               b"".join(packet(0x32, enc_str(topic) + struct.pack(">H", i + 1) +
                               b"%d-%d" % (round_, i)) for i in range(50)))
        r.s.shutdown(socket.SHUT_WR)
        answers = []
        while True:
            p = r.recv_packet()
            if p is None:
                break
            answers.append(p[0])
        r.close()
        pubacks.append(answers.count(0x40))
        got = [b.get().payload for _ in range(50)]
        assert got == [b"%d-%d" % (round_, i) for i in range(50)]
    assert 0 in pubacks, pubacks  # the path this test is about was taken
    assert hub.proc.poll() is None
