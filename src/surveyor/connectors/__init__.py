"""Connectors: LDAP / Active Directory, DNS zone transfers and SNMP (SPEC §9).

`base` is the contract; each connector module registers itself when imported.
"""
