"""The explorer: an agent that connects out to a console, receives scans, runs them and
uploads their data (SPEC §6). It runs as `surveyor explorer`, or embedded in `surveyor up`.
"""
