"""Request and response bodies of the REST API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, cast, get_type_hints

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from surveyor.core import kinds
from surveyor.core.inventory import Asset, AssetService, AssetSource
from surveyor.core.processing import ProcessingPhase
from surveyor.core.resources import Explorer, HostedZone, Site
from surveyor.core.scan_params import DEFAULT_PROBE_CAP
from surveyor.core.search import MAX_QUERY_LENGTH
from surveyor.core.task import Task
from surveyor.core.tasks import DEFAULT_GRACE_PERIOD_SECONDS, MIN_GRACE_PERIOD_SECONDS
from surveyor.security.passwords import password_problem
from surveyor.service.enrollment import DEFAULT_EXPIRY_DAYS

#: The largest id a database row can have (signed 64-bit); larger ones are refused as input.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the object's id")]
#: How many items a listing answers with at most.
Limit = Annotated[int, Query(ge=1, le=1000)]
#: `?exact=true`: a searched count counts every match instead of stopping at its cap.
ExactCount = Annotated[
    bool, Query(description="count every match of the search, however many (may be slow)")
]
#: `?search=`: a listing's or a count's search, in the search language (none: everything).
SearchQuery = Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)]
#: Where a listing by id goes on: after this id.
After = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="the last id of the previous page")
]


_Model = TypeVar("_Model", bound=BaseModel)


def from_attributes(model: type[_Model], row: object, **extra: Any) -> _Model:
    """A response model from the attributes of the same names of a frozen row, and `extra`
    for the fields the row does not hold."""
    values = {
        name: extra[name] if name in extra else getattr(row, name) for name in model.model_fields
    }
    return model.model_validate(values)


def fields_of(row_type: type, names: str) -> Callable[[type[_Model]], type[_Model]]:
    """A response model that shows the fields `names` of a frozen row, in that order.

    The decorated class declares only the fields the row does not have, or that the API shows
    otherwise; every other name takes its type from the row's field of that name, so the two
    cannot drift apart. The row's other fields (its internals, its secrets) are not shown.
    """
    row_types = get_type_hints(row_type)

    def build(declared: type[_Model]) -> type[_Model]:
        shown = names.split()
        not_fields = [name for name in vars(declared) if not name.startswith("_")]
        unplaced = set(declared.model_fields) - set(shown)
        if not_fields != ["model_config"] or unplaced:
            raise TypeError(f"{declared.__name__}: only fields, each named in `names`")
        fields: dict[str, Any] = {
            name: (declared.model_fields[name].annotation, declared.model_fields[name])
            if name in declared.model_fields
            else (row_types[name], ...)
            for name in shown
        }
        model = create_model(
            declared.__name__,
            __base__=declared.__base__,
            __module__=declared.__module__,
            __doc__=declared.__doc__,
            **fields,
        )
        return cast(type[_Model], model)

    return build


def name_field(**kwargs: Any) -> Any:
    """A name field: 1 to 200 characters, not all of them white space."""
    return Field(min_length=1, max_length=200, pattern=r"\S", **kwargs)


def _storable_text(value: Any) -> Any:
    """Refuse text no database can store: NUL characters and unpaired surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (it has an unpaired surrogate)") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_text(key)
            _storable_text(item)
    elif isinstance(value, list):
        for item in value:
            _storable_text(item)
    return value


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, so a typo never passes silently, and text
    that cannot be stored is refused before it reaches the database."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _check_text(cls, data: Any) -> Any:
        return _storable_text(data)


class Progress(BaseModel):
    collect: float
    process: float


class ChangeSummary(BaseModel):
    new: int = 0
    changed: int = 0
    offline: int = 0
    online: int = 0
    unchanged: int = 0
    ignored: int = 0
    total: int = 0


def _registered_types(schema: dict[str, Any]) -> None:
    schema["enum"] = [kind.type for kind in kinds.registered()]


def _creatable_types(schema: dict[str, Any]) -> None:
    schema["enum"] = kinds.creatable_types()


def _creatable_type(value: str) -> str:
    """Only kinds users create come through the task API (imports have their own route)."""
    kind = kinds.find_kind(value)
    if kind is None or not kind.creatable:
        raise ValueError(
            f"'{value[:40]}' is not a type of task this API creates "
            f"(types: {', '.join(kinds.creatable_types())})"
        )
    return value


@fields_of(
    Task,
    """id organization_id site_id name description type status status_label error wait_reason
    params stats progress change_summary explorer_id hosted_zone_id created_by created_by_user_id
    created_at updated_at start_time recur recur_frequency recur_rule timezone recur_next
    recur_last recur_last_task_id parent_id grace_period hidden data_acquisition_started_at
    data_acquisition_ended_at data_processing_started_at data_processing_ended_at finished_at
    size_data size_results data_partial""",
)
class TaskOut(BaseModel):
    type: str = Field(description="the task's kind", json_schema_extra=_registered_types)
    status_label: str
    progress: Progress
    change_summary: ChangeSummary | None
    data_partial: bool = Field(
        description="the stored data covers only part of the scope (the scan was stopped); "
        "processing it marks nothing offline"
    )


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class ProcessingRunOut(BaseModel):
    """One processing of a task's data; every run is kept with its summary and report."""

    run: int = Field(description="1 for the first processing, 2 for the next, …")
    phase: ProcessingPhase
    started_at: datetime
    ended_at: datetime | None
    observed_at: datetime = Field(description="when the data was collected")
    records_total: int
    records_done: int
    change_summary: ChangeSummary
    data_sha256: str | None


class ProcessingRunPage(BaseModel):
    items: list[ProcessingRunOut]
    next_cursor: str | None


class TabCounts(BaseModel):
    counts: dict[str, int]
    capped: dict[str, bool] = Field(
        default_factory=dict,
        description="per tab (and `all`): true when counting a search stopped at the cap"
        " (10,000) and the count is a lower bound, shown as `10,000+`; ask again with"
        " `exact=true` for the exact count",
    )


class RecurrenceIn(Strict):
    """When a recurring template runs: a frequency with its details, an RRULE, or cron."""

    frequency: Literal["once", "hourly", "daily", "weekly", "monthly", "rrule", "cron"]
    interval: int | None = Field(default=None, ge=1, le=1000)
    time: str | None = Field(default=None, max_length=5, description="HH:MM, local time")
    weekdays: list[str] | None = Field(default=None, max_length=7)
    day_of_month: int | None = Field(default=None, ge=1, le=31)
    rule: str | None = Field(default=None, max_length=1000, description="RFC 5545 RRULE")
    cron: str | None = Field(default=None, max_length=200, description="5-field cron")
    timezone: str = Field(default="UTC", max_length=64)
    start: AwareDatetime | None = None


class TaskCreate(Strict):
    name: str = name_field()
    description: str = Field(default="", max_length=10_000)
    type: Annotated[
        str,
        Field(max_length=40, json_schema_extra=_creatable_types),
        AfterValidator(_creatable_type),
    ] = kinds.SCAN.type
    site_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    explorer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    hosted_zone_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    params: dict[str, Any] = Field(default_factory=dict)
    start_time: AwareDatetime | None = None
    grace_period: int = Field(
        default=DEFAULT_GRACE_PERIOD_SECONDS,
        ge=MIN_GRACE_PERIOD_SECONDS,
        le=30 * 86400,
        description="seconds a due task may wait to launch",
    )
    recur: RecurrenceIn | None = None


class TaskUpdate(Strict):
    name: str | None = name_field(default=None)
    description: str | None = Field(default=None, max_length=10_000)
    explorer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    hosted_zone_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    params: dict[str, Any] | None = None
    start_time: AwareDatetime | None = None
    grace_period: int | None = Field(default=None, ge=MIN_GRACE_PERIOD_SECONDS, le=30 * 86400)
    recur: RecurrenceIn | None = None


class HideIn(Strict):
    hidden: bool = True


class TaskEventOut(BaseModel):
    id: int
    task_id: int
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    message: str


class EventPage(BaseModel):
    items: list[TaskEventOut]
    next_cursor: str | None


class OccurrencesOut(BaseModel):
    occurrences: list[datetime]
    description: str


_ALLOWED_SCOPE = (
    "where operators may scan (addresses, ranges, networks, hostnames); empty: the site's "
    "scope. Admins may scan outside it (audited)."
)


class SiteIn(Strict):
    name: str = name_field()
    description: str = Field(default="", max_length=10_000)
    scope: str = Field(default="", max_length=100_000)
    excludes: str = Field(default="", max_length=100_000)
    allowed_scope: str = Field(default="", max_length=100_000, description=_ALLOWED_SCOPE)


class SiteUpdate(Strict):
    name: str | None = name_field(default=None)
    description: str | None = Field(default=None, max_length=10_000)
    scope: str | None = Field(default=None, max_length=100_000)
    excludes: str | None = Field(default=None, max_length=100_000)
    allowed_scope: str | None = Field(default=None, max_length=100_000, description=_ALLOWED_SCOPE)


@fields_of(
    Site,
    "id organization_id name description scope excludes allowed_scope scope_size created_at "
    "updated_at",
)
class SiteOut(BaseModel):
    scope_size: int


class HostedZoneIn(Strict):
    name: str = name_field()
    description: str = Field(default="", max_length=10_000)
    max_concurrent: int = Field(default=1, ge=1, le=10_000)


class HostedZoneUpdate(Strict):
    name: str | None = name_field(default=None)
    description: str | None = Field(default=None, max_length=10_000)
    max_concurrent: int | None = Field(default=None, ge=1, le=10_000)


@fields_of(
    HostedZone,
    "id organization_id name description max_concurrent explorer_count created_at updated_at",
)
class HostedZoneOut(BaseModel):
    explorer_count: int


class ExplorerUpdate(Strict):
    name: str | None = name_field(default=None)
    site_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    hosted_zone_id: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="0 takes the explorer out of its zone"
    )


@fields_of(
    Explorer,
    "id organization_id name site_id hosted_zone_id online last_checkin_at version hostname os "
    "addresses current_task_id created_at updated_at",
)
class ExplorerOut(BaseModel):
    online: bool
    current_task_id: int | None


Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
RoleName = Literal["viewer", "operator", "admin"]
CurrentPassword = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="your current password: changing your e-mail, password or active flag "
        "asks for it",
    ),
]


def _policy(password: str) -> str:
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(problem)
    return password


#: Every password a person chooses passes the one policy of `security/passwords.py`.
NewPassword = Annotated[str, Field(max_length=1000), AfterValidator(_policy)]


class UserIn(Strict):
    """Add someone to the organization: an e-mail without an account gets a new account
    (a member at once); an existing account is invited and joins when it accepts."""

    email: Email
    name: str = Field(default="", max_length=200, description="a new account's name")
    role: RoleName = "viewer"
    password: NewPassword | None = Field(
        default=None,
        description="a new account's password; without it one is generated and shown once",
    )


class UserUpdate(Strict):
    """`role` is the organization admin's to change. The account's own fields are changed only
    by the account itself (confirming e-mail, password or active flag with `current_password`)
    or by a superuser."""

    role: RoleName | None = None
    name: str | None = Field(default=None, max_length=200)
    email: Email | None = None
    is_active: bool | None = None
    password: NewPassword | None = None
    current_password: CurrentPassword | None = None


class ProfileUpdate(Strict):
    name: str | None = Field(default=None, max_length=200)
    email: Email | None = None
    current_password: CurrentPassword | None = None


class PasswordChange(Strict):
    current_password: CurrentPassword
    new_password: NewPassword


class PasswordChanged(BaseModel):
    revoked_tokens: int = Field(description="your other sessions and API tokens, now revoked")


class AccountUpdate(Strict):
    name: str | None = Field(default=None, max_length=200)
    email: Email | None = None
    is_active: bool | None = None
    password: NewPassword | None = None
    current_password: CurrentPassword | None = Field(
        default=None, description="needed only when the account is your own"
    )


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    is_superuser: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class MembershipOut(BaseModel):
    organization_id: int
    organization_name: str
    role: str
    created_at: datetime


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    is_superuser: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    memberships: list[MembershipOut]


class InvitationOut(BaseModel):
    id: int
    organization_id: int
    organization_name: str
    user_id: int
    email: str
    role: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    expired: bool


class MemberAdded(BaseModel):
    outcome: Literal["created", "invited", "joined"] = Field(
        description="created: a new account, now a member; invited: an existing account, a "
        "member once it accepts; joined: your own account, now a member"
    )
    member: UserOut | None
    invitation: InvitationOut | None
    generated_password: str | None = Field(
        default=None, description="a new account's password, shown once, when none was given"
    )


class TokenIn(Strict):
    name: str = name_field()
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    organization_id: int
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; store it now")


class OrganizationIn(Strict):
    name: str = name_field()
    scope_cap: int = Field(default=65_536, ge=1, le=1 << 32)
    probe_cap: int = Field(
        default=DEFAULT_PROBE_CAP,
        ge=1,
        le=1 << 48,
        description="port probes (addresses times ports) one scan may make; an edit without it "
        "keeps the current one",
    )


class OrganizationCreate(OrganizationIn):
    """A new organization and who runs it: you (`join`), `admin_email`, or both."""

    join: bool = Field(default=False, description="you join it as its admin")
    admin_email: Email | None = Field(
        default=None,
        description="its first admin: a new account at once, an existing one by invitation",
    )


class OrganizationOut(BaseModel):
    id: int
    name: str
    scope_cap: int
    probe_cap: int
    created_at: datetime


class OrganizationCreated(OrganizationOut):
    members: list[MemberAdded]


class LoginIn(Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1000)
    organization_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user_id: int
    email: str
    organization_id: int
    role: str


class Health(BaseModel):
    status: str
    version: str


class AuditEventOut(BaseModel):
    """One entry of the audit trail: at `at`, `actor` did `action` to an object."""

    id: int
    organization_id: int | None
    at: datetime
    actor: str = Field(description="who did it: a user's e-mail, `explorer:NAME` or `system`")
    action: str = Field(description="what they did, e.g. create, edit, stop, remove, delete")
    object_type: str = Field(description="the kind of object, e.g. task, site, hosted_zone")
    object_id: int | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class EnrollmentTokenIn(Strict):
    """An enrollment token to create (`/api/v1/enrollment-tokens`, the Explorers page)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    site_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="site of the explorers enrolled with it"
    )
    hosted_zone_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="hosted zone they join"
    )
    expires_in_days: int | None = Field(
        default=DEFAULT_EXPIRY_DAYS,
        ge=1,
        le=3650,
        description=f"days until it expires (default {DEFAULT_EXPIRY_DAYS}); null: never",
    )
    max_uses: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="how many explorers may enroll with it (default: no limit)",
    )


@fields_of(
    AssetService,
    "port proto state name banner product http_status http_server http_title tls_subject "
    "tls_issuer tls_sans tls_not_before tls_not_after tls_sha256 version extrainfo tunnel cpe "
    "first_seen changed_at",
)
class ServiceOut(BaseModel):
    pass


@fields_of(AssetSource, "source first_seen last_seen")
class AssetSourceOut(BaseModel):
    """A source that saw an asset (`scan`, `ldap`, `import:nmap`, ...): first and last."""


@fields_of(
    Asset,
    "id organization_id site_id site address addresses mac hostname hostnames os alive "
    "service_count outlier outlier_reasons first_seen last_seen changed_at last_task_id ports "
    "mac_vendor os_accuracy os_version device_type description tags attributes seen_by "
    "uptime_seconds distance sources stale stale_since",
)
class AssetOut(BaseModel):
    """An asset as the API lists it (`/api/v1/assets`)."""

    #: Not seen for its organization's retention period (hidden unless a search names `stale`).
    stale: bool

    site: str
    #: `tcp/22 ssh`, one per service, in port order.
    ports: list[str]
    #: The sources that saw it, each with its first and last time seen, the latest first.
    sources: list[AssetSourceOut]
