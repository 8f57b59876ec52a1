"""The network lab fixture: one lab per test process, built once and always torn down.

The lab needs root and `ip netns`. Without them the tests fail with the reason; they never skip,
because a green run that silently skipped the network tests would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from surveyor.testing import labnetns
from surveyor.testing.daemonlab import DaemonLab, open_daemon_lab
from surveyor.testing.netlab import LabUnavailable, NetLab, open_lab


def require_lab() -> None:
    unavailable: LabUnavailable | None = None
    try:
        labnetns.require_lab_support()
    except LabUnavailable as exc:
        unavailable = exc
    if unavailable is not None:
        pytest.fail(f"the network lab cannot be built here: {unavailable}", pytrace=False)


@pytest.fixture(scope="session")
def lab() -> Iterator[NetLab]:
    """The standard lab; its teardown is checked, so a leak errors the last test using it."""
    require_lab()
    with open_lab() as built:
        yield built
    leftovers = labnetns.namespaces_of_lab(built.tag)
    assert not leftovers, f"the lab left namespaces behind: {sorted(leftovers)}"


@pytest.fixture(scope="session")
def daemon_lab() -> Iterator[DaemonLab]:
    """The lab of real Debian servers (`surveyor.testing.daemonlab`); its teardown is checked."""
    require_lab()
    with open_daemon_lab() as built:
        yield built
    leftovers = labnetns.namespaces_of_lab(built.net.tag)
    assert not leftovers, f"the daemon lab left namespaces behind: {sorted(leftovers)}"
    assert not built.net.workdir.exists(), "the daemon lab left its folder behind"
