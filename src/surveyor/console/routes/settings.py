"""`/api/v1/settings/retention`: the organization's retention (SPEC §10), read by members,
changed by admins; the daily Retention task applies it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from surveyor.console.auth import Admin, Viewer
from surveyor.console.errors import ApiError, error_responses
from surveyor.console.state import State
from surveyor.core.retention import (
    DEFAULT_STALE_AFTER_DAYS,
    DEFAULT_TASK_DATA_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    RetentionSettingError,
)
from surveyor.service.retention import RetentionView, retention_view, update_retention

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])
_ERRORS = error_responses(400, 401, 403, 422)


class RetentionOut(BaseModel):
    """An organization's retention, and its daily Retention task."""

    task_data_days: int = Field(
        description="task data files of tasks finished longer ago are deleted "
        f"(default {DEFAULT_TASK_DATA_DAYS})"
    )
    stale_after_days: int = Field(
        description="assets not seen for this long are stale and left out of default views "
        f"(default {DEFAULT_STALE_AFTER_DAYS})"
    )
    task_id: int | None = Field(description="the daily Retention task (a recurring template)")
    next_run: datetime | None = Field(description="when the Retention task runs next")


class RetentionPatch(BaseModel):
    task_data_days: int | None = Field(default=None, ge=MIN_DAYS, le=MAX_DAYS)
    stale_after_days: int | None = Field(default=None, ge=MIN_DAYS, le=MAX_DAYS)


def retention_out(view: RetentionView) -> RetentionOut:
    task = view.task
    return RetentionOut(
        task_data_days=view.settings.task_data_days,
        stale_after_days=view.settings.stale_after_days,
        task_id=task.id if task is not None else None,
        next_run=task.recur_next if task is not None else None,
    )


@router.get("/retention", response_model=RetentionOut, responses=_ERRORS)
def get_retention(principal: Viewer, state: State) -> RetentionOut:
    """The organization's retention."""
    with state.db.read() as conn:
        return retention_out(retention_view(conn, principal.organization_id))


@router.patch("/retention", response_model=RetentionOut, responses=_ERRORS)
def patch_retention(body: RetentionPatch, principal: Admin, state: State) -> RetentionOut:
    """Change the organization's retention (admins); its next Retention run applies it."""
    try:
        with state.db.write() as conn:
            view = update_retention(
                conn, principal, body.model_dump(exclude_none=True), now=state.clock.now()
            )
    except RetentionSettingError as exc:
        raise ApiError(400, "invalid_setting", exc.message, {"field": exc.field}) from exc
    return retention_out(view)
