"""``finsync run actuals-to-plan``: start a run on the process layer, watch it, end with its reconciliation.

It is a client of the process layer's HTTP API and nothing else:

- ``POST /v1/flows/actuals-to-plan/runs`` (with an ``Idempotency-Key``, so a
  retry after a lost answer starts no second run) answers 202 and the run's
  ``Location``;
- ``GET`` of that run until it ends, drawn as a progress bar on stderr; a run
  ``abandoned`` by a dead worker is followed to the run that replaces it;
- ``GET /v1/reconciliations?run_id=...``, every page, summed up per entity and
  period on stdout, then one final line.

``finsync up`` runs its first sync through this same code (:mod:`shared.first_sync`).

Exit codes: :data:`EXIT_OK` only when the run succeeded and reconciled (a dry
run: succeeded with no exception); :data:`EXIT_NOT_RECONCILED` when it ended any
other way or did not end in time; :data:`EXIT_REFUSED` when the process layer
refused to start it; :data:`EXIT_UNAVAILABLE` when the process layer or the
token endpoint could not be reached or refused the client.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from shared.auth.local import TokenError, fetch_token
from shared.progress import ProgressBar
from shared.run_summary import write_summary

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO

    from shared.settings import Settings

__all__ = (
    "EXIT_INTERRUPTED",
    "EXIT_NOT_RECONCILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "RUNS_PATH",
    "Credentials",
    "RunOptions",
    "RunReport",
    "default_range",
    "process_url",
    "run_actuals_to_plan",
)

EXIT_OK = 0
"""The run succeeded and reconciled (a dry run: succeeded, with no exception)."""
EXIT_NOT_RECONCILED = 1
"""The run ended failed, conflict or unreconciled, or did not end in time."""
EXIT_REFUSED = 2
"""The process layer refused to start the run (a 4xx problem); also argparse's code for bad options."""
EXIT_UNAVAILABLE = 3
"""The process layer or the token endpoint could not be reached, or refused the client."""
EXIT_INTERRUPTED = 130
"""Ctrl-C while watching: the run goes on without us."""

RUNS_PATH = "/v1/flows/actuals-to-plan/runs"
RECONCILIATIONS_PATH = "/v1/reconciliations"
PAGE_LIMIT = 500
"""The reconciliation list's documented maximum page size."""
START_ATTEMPTS = 3
"""Tries of the start request (same Idempotency-Key) when the connection fails."""
UNREACHABLE_GRACE = 30.0
"""Seconds the watch tolerates a process layer that stops answering, or answers 429 or 5xx (a restart)."""
TOKEN_MARGIN = 30.0
"""Seconds before a token's expiry it is fetched again."""
_ENDED = frozenset({"succeeded", "failed", "conflict"})


@dataclass(frozen=True)
class Credentials:
    """A client of the local issuer the run is started as (``finsync token``'s)."""

    token_url: str
    """The token endpoint."""
    client_id: str
    """The client (``demo`` by default: every scope)."""
    client_secret: str
    """Its secret."""


@dataclass(frozen=True)
class RunOptions:
    """What to run, where, and how long to watch it."""

    process_url: str
    """Base URL of the process layer."""
    period_from: str
    """First period, ``YYYY-MM``."""
    period_to: str
    """Last period, ``YYYY-MM``."""
    entities: tuple[str, ...] = ()
    """Legal entities; empty: every entity of the ERP."""
    source: str | None = None
    """The ERP source; None: the flow's setting."""
    planning: str | None = None
    """The planning source; None: the flow's setting."""
    dry_run: bool = False
    """Extract, map, validate and aggregate, but load nothing."""
    wait: bool = True
    """Watch the run until it ends; False: return once it is queued."""
    timeout: float = 1800.0
    """Seconds to watch before giving up (the run goes on)."""
    poll: float = 0.5
    """Seconds between two reads of the run."""
    credentials: Credentials | None = None
    """Who starts the run; None: no token (auth is off)."""


@dataclass
class RunReport:
    """How a run went, for the caller's exit code (and ``finsync up``'s message)."""

    exit_code: int
    """One of the ``EXIT_`` codes."""
    message: str
    """The final line."""
    run: dict[str, Any] | None = None
    """The run as last read, when one was started."""
    lines: list[dict[str, Any]] = field(default_factory=list)
    """Its reconciliation lines."""

    @property
    def reconciled(self) -> bool:
        """The run succeeded and every line matched."""
        return self.run is not None and bool((self.run.get("result") or {}).get("reconciled"))


class _CommandError(Exception):
    """Why the command stops, with its exit code."""

    def __init__(self, exit_code: int, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.transient = transient
        """Worth asking again: the connection failed, or the answer was a 429 or a 5xx."""


class _WatchStoppedError(Exception):
    """The caller asked to stop watching (``finsync up`` is stopping)."""


def default_range(months_back: int, today: dt.date | None = None) -> tuple[str, str]:
    """This month (UTC) and ``months_back`` months before it: the window a scheduled run covers."""
    today = today or dt.datetime.now(dt.UTC).date()
    index = today.year * 12 + today.month - 1 - months_back
    return f"{index // 12:04d}-{index % 12 + 1:02d}", f"{today.year:04d}-{today.month:02d}"


def process_url(settings: Settings) -> str:
    """The process layer's URL as a client reaches it: a wildcard bind is reached on loopback."""
    url = settings.below_url("process")
    for wildcard in ("//0.0.0.0:", "//[::]:", "//:"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


class _Token:
    """A bearer token of :class:`Credentials`, fetched again shortly before it expires."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials
        self._value: str | None = None
        self._expires = 0.0

    def headers(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        if self._value is None or time.monotonic() > self._expires:
            self._fetch(self.credentials)
        return {"Authorization": f"Bearer {self._value}"}

    def _fetch(self, credentials: Credentials) -> None:
        try:
            body = fetch_token(
                credentials.token_url,
                credentials.client_id,
                credentials.client_secret,
                scope="flows:run flows:read",
                audience="finsync-process",
            )
        except TokenError as exc:
            raise _CommandError(
                EXIT_UNAVAILABLE, f"no token for client {credentials.client_id!r}: {exc}"
            ) from exc
        self._value = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 60)
        self._expires = time.monotonic() + max(lifetime - TOKEN_MARGIN, lifetime / 2)


class _ProcessApi:
    """The few process-layer calls the command makes; failures become :class:`_CommandError`."""

    def __init__(self, options: RunOptions) -> None:
        self.base = options.process_url.rstrip("/")
        self.token = _Token(options.credentials)
        self.http = httpx.Client(base_url=self.base, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def start(self, options: RunOptions) -> tuple[dict[str, Any], str]:
        """Start the run; return it and its location (a path)."""
        body: dict[str, Any] = {"period_from": options.period_from, "period_to": options.period_to}
        if options.entities:
            body["entities"] = list(options.entities)
        if options.source:
            body["source"] = options.source
        if options.planning:
            body["planning"] = options.planning
        headers = {**self.token.headers(), "Idempotency-Key": f"finsync-run-{uuid.uuid4().hex}"}
        params = {"dry_run": "true"} if options.dry_run else {}
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                response = self.http.post(RUNS_PATH, json=body, params=params, headers=headers)
                break
            except httpx.TransportError as exc:
                if attempt == START_ATTEMPTS:
                    raise self._unreachable(exc) from exc
                time.sleep(0.5 * attempt)
        if response.status_code != 202:
            refused = 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429)
            raise _CommandError(
                EXIT_REFUSED if refused else EXIT_UNAVAILABLE,
                f"the process layer refused the run: {_problem(response)}",
            )
        run: dict[str, Any] = response.json()
        return run, response.headers.get("location") or f"{RUNS_PATH}/{run['id']}"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.http.get(path, params=params, headers=self.token.headers())
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            raise _CommandError(
                EXIT_UNAVAILABLE,
                f"GET {self.url(path)} answered {_problem(response)}",
                transient=response.status_code == 429 or response.status_code >= 500,
            )
        answer: dict[str, Any] = response.json()
        return answer

    def reconciliations(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every reconciliation line of the run, page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "limit": PAGE_LIMIT}
            if cursor:
                params["cursor"] = cursor
            page = self.get(RECONCILIATIONS_PATH, params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _unreachable(self, exc: httpx.TransportError) -> _CommandError:
        reason = str(exc) or type(exc).__name__
        return _CommandError(
            EXIT_UNAVAILABLE,
            f"cannot reach the process layer at {self.base} ({reason}); is the stack up ('finsync up')?",
            transient=True,
        )


def _problem(response: httpx.Response) -> str:
    """``422 Run refused: the ERP has no ...`` from an RFC 9457 body, or the status and a bit of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {response.text[:200]}".rstrip(": ")
    text = f"{response.status_code} {body.get('title') or response.reason_phrase}"
    if body.get("detail"):
        text += f": {body['detail']}"
    errors = [
        f"{error.get('key') or error.get('source') or '?'}: {error.get('message')}"
        for error in body.get("errors") or []
        if isinstance(error, dict)
    ]
    if errors:
        text += f" ({'; '.join(errors)})"
    return text


def run_actuals_to_plan(
    options: RunOptions,
    *,
    out: TextIO,
    err: TextIO,
    stop: Callable[[], bool] = lambda: False,
    label: str = "actuals-to-plan",
    prefix: str = "finsync run actuals-to-plan",
) -> RunReport:
    """Start a run, draw its progress on ``err``, write its reconciliation summary and final line.

    Args:
        options: What to run and where.
        out: Where the summary and a successful final line go (stdout).
        err: Where the progress bar and any failure go (stderr).
        stop: Polled while watching; True stops watching (the run goes on without us).
        label: What the progress bar calls the work.
        prefix: What a failure's line starts with.

    Returns:
        The report; its ``exit_code`` is the command's.
    """
    api = _ProcessApi(options)
    run: dict[str, Any] | None = None
    try:
        run, location = api.start(options)
        out.write(f"run {run['id']} {run['status']}: {api.url(location)}\n")
        out.flush()
        if not options.wait:
            return RunReport(EXIT_OK, f"run {run['id']} started; watch it at {api.url(location)}", run)
        run = _watch(api, location, options, err, stop, label)
        lines = list(api.reconciliations(run["id"])) if run["status"] == "succeeded" else []
        write_summary(run, lines, out)
        report = _verdict(run, lines, api)
    except _CommandError as exc:
        report = RunReport(exc.exit_code, exc.message, run)
    except _WatchStoppedError:
        where = f"; run {run['id']} goes on without this watch" if run else ""
        report = RunReport(EXIT_INTERRUPTED, f"stopped watching{where}", run)
    except KeyboardInterrupt:
        where = f"; run {run['id']} goes on: {api.url(RUNS_PATH)}/{run['id']}" if run else ""
        report = RunReport(EXIT_INTERRUPTED, f"interrupted{where}", run)
    finally:
        api.close()
    if report.exit_code == EXIT_OK:
        out.write(f"{report.message}\n")
        out.flush()
    else:
        err.write(f"{prefix}: {report.message}\n")
        err.flush()
    return report


def _watch(
    api: _ProcessApi,
    location: str,
    options: RunOptions,
    err: TextIO,
    stop: Callable[[], bool],
    label: str,
) -> dict[str, Any]:
    """Read the run until it ends; follow a replacement when its worker died; draw the progress."""
    bar = ProgressBar(err, label)
    deadline = time.monotonic() + options.timeout
    unreachable_since: float | None = None
    try:
        while True:
            if stop():
                raise _WatchStoppedError
            try:
                run = api.get(location)
                unreachable_since = None
            except _CommandError as exc:
                unreachable_since = unreachable_since or time.monotonic()
                if not exc.transient or time.monotonic() - unreachable_since > UNREACHABLE_GRACE:
                    raise
                run = None
            if run is not None:
                status = run["status"]
                successor = (run.get("result") or {}).get("replaced_by")
                if status == "abandoned" and successor:
                    bar.close()
                    err.write(f"run {run['id']} was abandoned by its worker; following run {successor}\n")
                    location = f"{RUNS_PATH}/{successor}"
                    continue
                if status in _ENDED:
                    bar.update(run.get("step") or status, 1.0 if status == "succeeded" else run["progress"])
                    return run
                step = run.get("step") if status == "running" else None
                bar.update(step or status, float(run.get("progress") or 0.0))
            if time.monotonic() > deadline:
                raise _CommandError(
                    EXIT_NOT_RECONCILED,
                    f"the run has not ended after {options.timeout:.0f}s; it goes on: {api.url(location)}",
                )
            _sleep(options.poll, stop)
    finally:
        bar.close()


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep, waking early when ``stop`` says so."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0 and not stop():
        time.sleep(min(left, 0.1))


def _verdict(run: dict[str, Any], lines: list[dict[str, Any]], api: _ProcessApi) -> RunReport:
    """The final line and exit code of a run that ended."""
    status, result = run["status"], run.get("result") or {}
    params, counts = run.get("params") or {}, run.get("counts") or {}
    what = f"run {run['id']}"
    if status == "conflict":
        return RunReport(EXIT_NOT_RECONCILED, f"{what} ended conflict: {run.get('error')}", run, lines)
    if status == "failed":
        return RunReport(EXIT_NOT_RECONCILED, f"{what} failed: {run.get('error')}", run, lines)
    exceptions = int(result.get("exceptions") or 0)
    if result.get("dry_run"):
        if exceptions:
            return RunReport(
                EXIT_NOT_RECONCILED,
                f"dry {what} found {exceptions} exception(s): {api.url('/v1/exceptions')}?run_id={run['id']}",
                run,
                lines,
            )
        return RunReport(EXIT_OK, f"dry {what} succeeded: nothing loaded, no exception", run, lines)
    if not result.get("reconciled"):
        mismatched = sum(1 for line in lines if line["status"] != "matched")
        return RunReport(
            EXIT_NOT_RECONCILED,
            f"{what} succeeded but did not reconcile: {mismatched} mismatched line(s), {exceptions} exception(s)"
            f" ({api.url('/v1/exceptions')}?status=open)",
            run,
            lines,
        )
    entities = params.get("entities") or []
    slices = len(result.get("slices") or {})
    return RunReport(
        EXIT_OK,
        f"{what} succeeded and reconciled: {slices} slice(s), {', '.join(entities)}, "
        f"{params.get('period_from')}..{params.get('period_to')}, {counts.get('rows_loaded', 0)} row(s) loaded"
        f"{_took(run)}",
        run,
        lines,
    )


def _took(run: dict[str, Any]) -> str:
    """`` in 41 s``: from the run's creation to its end, as the ledger recorded them."""
    try:
        seconds = (
            dt.datetime.fromisoformat(run["finished_at"]) - dt.datetime.fromisoformat(run["created_at"])
        ).total_seconds()
    except (KeyError, TypeError, ValueError):
        return ""
    return f" in {seconds:.0f} s"
