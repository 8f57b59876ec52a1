"""Connectors: LDAP / Active Directory, DNS zone transfers and SNMP (SPEC §9).

`base` is the contract; each connector module registers itself when imported, and `load`
imports them all (the console and explorers call it once at start; the CLI never pays for
the connectors' libraries).
"""

from __future__ import annotations

import importlib

#: The modules of the connectors Surveyor ships.
SHIPPED = ("ldap", "dns", "snmp")


def load() -> list[str]:
    """Import and so register every shipped connector; returns their names."""
    from surveyor.connectors.base import connector_names

    for name in SHIPPED:
        try:
            importlib.import_module(f"surveyor.connectors.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"surveyor.connectors.{name}":
                raise
    return connector_names()
