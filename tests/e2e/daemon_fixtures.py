"""pytest fixtures for the daemon tests (imported by test_daemon*.py and
test_deploy*.py)."""
import pytest

from daemonlib import Daemon, manifest, wait_for


@pytest.fixture
def daemons(berth, tmp_path, registry):
    """Makes daemons; at the end each one removes its modules (an empty
    deployment) so no instance, cgroup or mount is left, then stops."""
    made = []

    def make(deployment=None, **options):
        where = tmp_path / ("d%d" % len(made))
        where.mkdir(exist_ok=True)
        d = Daemon(berth, where, registry=registry, deployment=deployment, **options)
        made.append(d)
        return d
    yield make
    for d in made:
        try:
            if d.proc is None or d.proc.poll() is not None:
                d.start()
            if d.deploy(manifest({}), check=False).returncode != 0:
                # A device managed from the cloud refuses local deployments:
                # the same state, deployed locally, is emptied.
                d.terminate()
                d.set_options(deployments="local")
                d.start()
                d.deploy(manifest({}))
            wait_for(lambda: not d.modules(), 30, interval=0.1, what="modules removed")
            d.terminate()
        finally:
            d.kill()


@pytest.fixture
def image(busybox_image):
    return busybox_image["ref"]
