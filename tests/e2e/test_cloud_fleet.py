"""A fleet of three devices managed from one IoT Hub stand-in, each in a
network namespace of its own (tests/e2e/fleetkit.py): one deployment
converges on all three; a device whose link goes down misses a change the
others take, and catches up when its link returns. bench/fleet.sh runs the
same with 20 devices and times the convergence."""
import time

import pytest

from fleetkit import Fleet, have_tools, registry_port

pytestmark = pytest.mark.skipif(not have_tools(), reason="needs root and ip")


@pytest.fixture
def fleet(tmp_path, berth_bin, registry, busybox_image):
    f = Fleet(tmp_path, berth_bin, 3, registry_port(registry.host),
              busybox_image["ref"].split("/", 1)[1])
    try:
        yield f.start()
    finally:
        f.close()


def test_one_deployment_converges_on_three_devices_and_a_cut_one_catches_up(fleet):
    v1 = fleet.deploy({"sensor": None})
    fleet.wait_converged(v1, {"sensor"}, timeout=90)
    # The third device's link goes down; a second version (a module more)
    # reaches the other two, not it.
    cut = fleet.devices[2]
    fleet.link(cut, False)
    v2 = fleet.deploy({"sensor": None, "filter": {"LEVEL": "2"}})
    fleet.wait_converged(v2, {"sensor", "filter"}, devices=fleet.devices[:2], timeout=90)
    time.sleep(2)
    assert not fleet.converged(cut, v2[cut.id], {"sensor", "filter"})
    assert cut.daemon.module(cut.module_name("filter")) is None
    assert cut.daemon.module(cut.module_name("sensor"))["runtimeStatus"] == "running"
    # The link returns: it catches up.
    fleet.link(cut, True)
    fleet.wait_converged(v2, {"sensor", "filter"}, devices=[cut], timeout=120)
    for dev in fleet.devices:
        assert dev.daemon.module(dev.module_name("filter"))["runtimeStatus"] == "running"
