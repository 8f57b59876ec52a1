"""Opens a small lab, prints its tag, and holds it until signalled (for the teardown tests).

With the argument `daemons`, the lab is a daemon lab of one host (`mail`: Exim, Dovecot and
OpenSSH, servers that fork processes of their own).
"""

from __future__ import annotations

import sys
import time

from surveyor.testing.daemonlab import open_daemon_lab
from surveyor.testing.daemonplan import daemon_host
from surveyor.testing.labplan import LabPlan
from surveyor.testing.netlab import open_lab

HOLD_SECONDS = 60.0


def _hold(tag: str) -> None:
    sys.stdout.write(f"{tag}\n")
    sys.stdout.flush()
    time.sleep(HOLD_SECONDS)


def main() -> None:
    if sys.argv[1:] == ["daemons"]:
        with open_daemon_lab((daemon_host("mail"),)) as daemons:
            _hold(daemons.net.tag)
        return
    with open_lab(LabPlan.small()) as lab:
        _hold(lab.tag)


if __name__ == "__main__":
    main()
