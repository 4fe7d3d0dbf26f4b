"""Request and response models: they validate bodies and generate ``/openapi.json``."""

from __future__ import annotations

import math
import re
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal, Self
from zoneinfo import available_timezones

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

Symbol = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[!-~]{1,32}$"),
]
NoNul = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


MAX_ID = 2**31 - 1  # the largest id the databases' INTEGER columns hold
# How deep ``params`` may nest (the object itself is level 1). Real params are flat or one
# level deep; every reader of them (the job store, the worker, the sandbox's copy per symbol)
# recurses, and near 1,000 levels the worker's ``json.loads`` raised RecursionError on a job
# the API had accepted. 32 is far beyond any real use and far below every recursion limit.
MAX_PARAMS_DEPTH = 32


def _bounded_params(value: dict[str, Any]) -> dict[str, Any]:
    """``params`` as a script can use them: nested at most ``MAX_PARAMS_DEPTH`` levels, and
    every number finite (JSON has no infinity, but ``1e400`` overflows to one when parsed)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: the check itself must not recurse
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_PARAMS_DEPTH:
                raise ValueError(f"nested deeper than {MAX_PARAMS_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (a number like 1e400 overflows)")
    return value


Params = Annotated[dict[str, Any], AfterValidator(_bounded_params)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_of_script_or_id(schema: dict[str, Any]) -> None:
    """Document what the validator enforces: exactly one of ``script`` or ``script_id``."""
    props = schema["properties"]
    props["script"] = {"type": "string", "minLength": 1, "description": "inline code"}
    props["script_id"] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    schema["oneOf"] = [{"required": ["script"]}, {"required": ["script_id"]}]


BUILT_IN_REFERENCES = ("@market", "@sector")
MAX_REFERENCE_SYMBOLS = 10  # API.md: up to 10 symbols, besides the built-ins


def _reference_names(value: list[str]) -> list[str]:
    """``reference`` as the job keeps it: the built-ins as written, symbols upper-cased
    (as ``symbols`` are), duplicates dropped, order kept; at most 10 symbols."""
    names: dict[str, None] = {}
    for raw in value:
        name = raw.strip()
        if name.startswith("@"):
            if name not in BUILT_IN_REFERENCES:
                raise ValueError(f"{name!r} is no built-in (the built-ins are @market and @sector)")
        elif not re.fullmatch(r"[!-~]{1,32}", name):
            raise ValueError(f"{name!r} is not a symbol (1 to 32 printable ASCII characters)")
        else:
            name = name.upper()
        names.setdefault(name, None)
    symbols = [n for n in names if n not in BUILT_IN_REFERENCES]
    if len(symbols) > MAX_REFERENCE_SYMBOLS:
        raise ValueError(
            f"at most {MAX_REFERENCE_SYMBOLS} symbols (and @market, @sector), not {len(symbols)}"
        )
    return list(names)


Reference = Annotated[
    list[Annotated[str, StringConstraints(max_length=40)]],
    Field(
        max_length=40,
        description="up to 10 symbols and the built-ins @market, @sector; the script reads "
        "ref[name] (API.md, Reference series)",
    ),
    AfterValidator(_reference_names),
]


class CrossSection(Strict):
    """``cross_section`` of ``POST /execute`` (API.md, Cross-sectional transforms)."""

    neutralize: Literal["sector"] | None = None
    transform: Literal["rank", "zscore", "demean"]


class ScriptRun(Strict):
    """What ``/execute`` and ``/evaluate`` take alike (API.md: "as for ``/execute``"):
    exactly one of ``script`` or ``script_id``, and what the script is run with."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of_script_or_id)

    script: str | None = Field(None, min_length=1, description="inline code (up to 64 KiB)")
    script_id: int | None = Field(None, ge=1, le=MAX_ID, description="a saved script")
    params: Params = Field(default_factory=dict)
    lookback: int = Field(252, ge=1, le=2520)
    reference: Reference = Field(default_factory=list)
    wait: float = Field(0, ge=0, le=30)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.script is None) == (self.script_id is None):
            raise ValueError("give exactly one of script or script_id")
        return self


class ExecuteRequest(ScriptRun):
    """``POST /execute``: the script once per symbol, on the bars up to ``as_of``."""

    symbols: list[Symbol] = Field(min_length=1, max_length=5000)
    as_of: date | None = None
    timeout: float | None = Field(
        None,
        gt=0,
        description="the job's wall-clock limit in seconds; default CALC_JOB_WALL_SECONDS "
        "(10), and more than CALC_MAX_JOB_WALL_SECONDS (60) is cut to it, not refused",
    )
    cross_section: CrossSection | None = None


class EvaluateRequest(ScriptRun):
    """``POST /evaluate``: a script run at every rebalance date of a period (API.md)."""

    symbols: list[Symbol] = Field(min_length=2, max_length=5000)
    start: date
    end: date
    every: int = Field(1, ge=1, le=63, description="every n-th calendar date from start")
    horizons: list[Annotated[int, Field(ge=1, le=252)]] = Field(
        default_factory=lambda: [1, 5, 21], min_length=1, max_length=5
    )
    quantiles: int = Field(5, ge=2, le=10)
    neutralize: Literal["sector"] | None = None
    field: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    timeout: float | None = Field(
        None,
        gt=0,
        description="the evaluation's wall-clock limit in seconds; default and most "
        "CALC_EVALUATION_WALL_SECONDS (600): more is cut to it, not refused",
    )

    @field_validator("horizons")
    @classmethod
    def _sorted_horizons(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class ValidateRequest(Strict):
    code: str = Field(min_length=1)


CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


@cache
def _time_zones() -> frozenset[str]:
    # The IANA names zoneinfo knows (system tzdata); a set, so that no path-like key such
    # as '../x' ever reaches ZoneInfo's file lookup.
    return frozenset(available_timezones())


class Schedule(Strict):
    cron: str = Field(
        min_length=1,
        max_length=100,
        description="five-field cron or an alias (@daily, @hourly, ...), in `timezone`",
    )
    timezone: str = Field("UTC", max_length=64, description="IANA time zone of the cron")
    symbols: list[Symbol] = Field(min_length=1, max_length=5000)
    params: Params = Field(default_factory=dict)
    lookback: int = Field(252, ge=1, le=2520)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        if value.lower() in CRON_ALIASES:
            return value.lower()
        if len(value.split(" ")) != 5 or not croniter.is_valid(value):
            raise ValueError(
                "must be a valid five-field cron expression, e.g. '30 22 * * 1-5', or one of "
                + ", ".join(sorted(CRON_ALIASES))
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        if value not in _time_zones():
            raise ValueError("must be an IANA time zone name, e.g. 'America/New_York' or 'UTC'")
        return value

    @field_validator("symbols")
    @classmethod
    def _unique_symbols(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ScriptBody(Strict):
    name: Annotated[NoNul, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    description: Annotated[NoNul, StringConstraints(max_length=2000)] | None = None
    code: str = Field(min_length=1)
    schedule: Schedule | None = None


# ---- responses (documented in the OpenAPI description) ----------------------------------


class ErrorBody(BaseModel):
    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class RateLimitDetails(BaseModel):
    """Every 429's ``details``, whichever layer refused (README, The API beyond API.md)."""

    model_config = ConfigDict(extra="forbid")

    limit: str = Field(
        description="the limit reached: a request rate (`30 per 1 second`), "
        "`20 queued or running jobs` of the caller, or `50000 symbols queued or running in "
        "the service`"
    )
    retry_after: int = Field(ge=1, description="seconds to wait, as the Retry-After header")


class RateLimitedBody(ErrorBody):
    type: Literal["RateLimited"]
    details: RateLimitDetails


class RateLimitedResponse(BaseModel):
    error: RateLimitedBody


class PayloadTooLargeBody(ErrorBody):
    type: Literal["PayloadTooLarge"]
    details: dict[str, str] = Field(
        description="the one field over its limit (`body` or `code`) and the limit, "
        '`{"code": "at most 65536 bytes"}`',
        min_length=1,
        max_length=1,
    )


class PayloadTooLargeResponse(BaseModel):
    error: PayloadTooLargeBody


class Progress(BaseModel):
    done: int
    total: int


class SymbolError(BaseModel):
    type: str
    message: str
    line: int | None = None


ResultValue = float | dict[str, float | None] | None


class JobWarning(BaseModel):
    message: str
    count: int = Field(description="symbols (an evaluation: runs) it happened in")


class Provenance(BaseModel):
    """What the job ran on (API.md): ``as_of`` and ``data_version`` once it started."""

    code_sha256: str
    params: dict[str, Any]
    lookback: int
    reference: list[str]
    as_of_requested: str | None
    as_of: str | None = Field(description="the last trading date actually used")
    data_version: int | None
    symbols: int


class JobResponse(BaseModel):
    job_id: str
    kind: Literal["execute", "evaluation"] = "execute"
    status: Literal["queued", "running", "completed", "failed", "timed_out", "cancelled"]
    script_id: int | None
    progress: Progress
    results: dict[str, ResultValue] | None = None
    errors: dict[str, SymbolError] | None = None
    stdout: dict[str, str] | None = None
    cross_section: dict[str, float | None] | None = None
    evaluation: dict[str, Any] | None = Field(
        None, description="a finished evaluation's figures (API.md, Evaluating a signal)"
    )
    error: SymbolError | None
    cache_hits: int
    errors_by_type: dict[str, int] | None = Field(
        None, description="per-symbol (an evaluation: per-run) error counts by type"
    )
    warnings: list[JobWarning] | None = None
    provenance: Provenance | None = None
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None


class JobList(BaseModel):
    items: list[JobResponse]
    total: int
    limit: int
    offset: int


class ValidResponse(BaseModel):
    valid: bool


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Any]


class ScriptResponse(BaseModel):
    id: int
    name: str
    description: str | None
    code: str
    schedule: Schedule | None
    user_id: str | None
    created_at: str
    updated_at: str


class ScriptList(BaseModel):
    items: list[ScriptResponse]
    total: int
    limit: int
    offset: int


class ScriptRunResponse(BaseModel):
    job_id: str
    code_sha256: str | None = Field(description="SHA-256 of the code this run ran")
    finished_at: str
    results: dict[str, ResultValue]
    errors: dict[str, SymbolError]


class JobListQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)
    status: Literal["queued", "running", "completed", "failed", "timed_out", "cancelled"] | None = (
        None
    )
    script_id: int | None = Field(None, ge=1, le=MAX_ID)


class ScriptListQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)
    q: Annotated[NoNul, StringConstraints(max_length=200)] | None = None


class UniverseSymbol(BaseModel):
    symbol: str
    name: str | None
    sector: str | None


class UniverseResponse(BaseModel):
    """``GET /universe``: every symbol with bars, its sector, the data's first and last date."""

    symbols: list[UniverseSymbol]
    sectors: list[str]
    first_date: str | None
    last_date: str | None
