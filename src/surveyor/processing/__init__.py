"""Processing: the queue of collected task data, and what workers make of it.

`queue` claims tasks with leases, `processors` finds the processor a task's kind names, `records`
reads task data, `merge` writes it into the inventory (the `inventory` processor, registered
here), `outliers` scores a site's assets (the `outlier` processor, registered here), `reports`
computes the organization's reports (the `report` processor), `retention` deletes old task
data and marks unseen assets stale (the `retention` processor), `queries` counts an
organization's pinned queries (the `query` processor, requested after every other
processing), `worker` runs the loop (inside the console, or as `surveyor worker`).
"""

from surveyor.core.kinds import (
    INVENTORY_PROCESSOR,
    OUTLIER_PROCESSOR,
    QUERY_PROCESSOR,
    REPORT_PROCESSOR,
    RETENTION_PROCESSOR,
)
from surveyor.processing.merge import merge_into_inventory
from surveyor.processing.outliers import calculate_outliers
from surveyor.processing.processors import register_after_processing, register_processor
from surveyor.processing.queries import refresh_queries, request_after_processing
from surveyor.processing.reports import compute_report
from surveyor.processing.retention import apply_retention

register_processor(INVENTORY_PROCESSOR, merge_into_inventory)
register_processor(OUTLIER_PROCESSOR, calculate_outliers)
register_processor(REPORT_PROCESSOR, compute_report)
register_processor(RETENTION_PROCESSOR, apply_retention)
register_processor(QUERY_PROCESSOR, refresh_queries)
register_after_processing(request_after_processing)
