"""Processing: the queue of collected task data, and the merge of that data into the inventory.

`queue` claims tasks with leases, `records` reads task data, `merge` writes it into the
inventory, `worker` runs the loop (inside the console, or as `surveyor worker`).
"""
