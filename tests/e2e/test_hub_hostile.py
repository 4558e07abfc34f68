"""A hostile client cannot exhaust the hub: not its file descriptors, not
its memory (before or after CONNECT), not its event loop. Each test opens
the attack from the hub's Unix socket, as any process in any instance could,
and then checks that a well-behaved module still gets its service."""
import resource
import socket
import time

from hubkit import (Module, Raw, connect_packet, make_hub, remaining_length,  # noqa: F401
                    username, wait_for)


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
