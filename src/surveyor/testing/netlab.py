"""A network lab built from network namespaces, for tests and benchmarks that really scan.

    with open_lab() as lab:
        lab.run_in_scanner([surveyor, "scan", lab.plan.scan_range, "-o", out])

Topology, all of it inside namespaces named `svl-<6 hex>-...` (nothing is created in, or attached
to, the namespace the caller runs in):

- `<tag>-sw` holds the Linux bridge `br0`, and nothing else; it has no address.
- `<tag>-scan` is the scanner's namespace: `eth0` 10.77.0.2/24 on the bridge, loopback, and no
  other route, so a scan run there can reach the lab and nothing else.
- `<tag>-<host>` for each host of the plan: `eth0` at the host's address and MAC, its services
  (`labservices`), an nftables ruleset dropping its filtered ports, and for the impaired host
  50 ms delay and 5 % loss: `tc netem` where the kernel has it, else the userspace `labwire`.

Teardown kills every process the lab started and deletes every namespace (which deletes their
interfaces), on normal exit, on exceptions and Ctrl-C (the context manager), on SIGTERM (turned
into SystemExit while a lab is open in the main thread), and at interpreter exit (atexit). A run
killed outright is cleaned up by the next lab (`labnetns.remove_crashed_labs`).
"""

from __future__ import annotations

import atexit
import contextlib
import re
import secrets
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from surveyor.testing import labnetns
from surveyor.testing.labbuild import LabBuilder
from surveyor.testing.labinstance import LabHost, LabService, NetLab
from surveyor.testing.labnetns import LabUnavailable
from surveyor.testing.labplan import LabPlan

__all__ = ["LabHost", "LabService", "LabUnavailable", "NetLab", "new_tag", "open_lab"]


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While a lab is open, SIGTERM unwinds through `finally` blocks instead of killing outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def exit_on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def new_tag() -> str:
    """A fresh random lab tag, such as `svl-3fa91c`."""
    return f"{labnetns.TAG_PREFIX}{secrets.token_hex(3)}"


@contextlib.contextmanager
def open_lab(
    plan: LabPlan | None = None, *, impairment: str = "auto", tag: str | None = None
) -> Iterator[NetLab]:
    """Build a lab from `plan` (default: the standard lab), yield it, and always remove it.

    `impairment` is "auto" (netem if the kernel has it, else the userspace wire), "netem" or
    "wire". `tag` names the lab (`svl-` and 6 hex digits; default: random). Raises
    `LabUnavailable` when this machine cannot build the lab (not root, no `ip`, or "netem"
    asked for on a kernel without it).
    """
    if impairment not in {"auto", "netem", "wire"}:
        raise ValueError(f"impairment must be auto, netem or wire, not {impairment!r}")
    tag = tag or new_tag()
    if not re.fullmatch(rf"{labnetns.TAG_PREFIX}[0-9a-f]{{6}}", tag):
        raise ValueError(f"a lab tag is {labnetns.TAG_PREFIX} and 6 hex digits, not {tag!r}")
    labnetns.require_lab_support()
    labnetns.remove_crashed_labs()
    if labnetns.namespaces_of_lab(tag) or (labnetns.REGISTRY / f"{tag}.json").exists():
        raise ValueError(f"the lab tag {tag} is in use")
    plan = plan or LabPlan.standard()
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    lab = NetLab(plan, tag, workdir)
    with _sigterm_as_exit():
        lab.registry_entry().save()
        atexit.register(lab.close)
        try:
            LabBuilder(lab, impairment).build()
            yield lab
        finally:
            lab.close()
