"""Files other tools write (nmap XML, masscan, CSV), read as Surveyor task data (SPEC §7, §9).

Each reader takes the file as blocks of bytes and yields host records of the task data
format; `convert.task_records` detects the format, merges the records of one address and
frames them with a `config` and a `summary` record. Nothing here touches the database or
the network; readers import only `surveyor.core`.
"""
