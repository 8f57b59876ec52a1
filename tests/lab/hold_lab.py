"""Opens a small lab, prints its tag, and holds it until signalled (for the teardown tests)."""

from __future__ import annotations

import sys
import time

from surveyor.testing.labplan import LabPlan
from surveyor.testing.netlab import open_lab

HOLD_SECONDS = 60.0


def main() -> None:
    with open_lab(LabPlan.small()) as lab:
        sys.stdout.write(f"{lab.tag}\n")
        sys.stdout.flush()
        time.sleep(HOLD_SECONDS)


if __name__ == "__main__":
    main()
