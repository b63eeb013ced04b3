"""The ``finsync`` command: ``serve``, ``up``, ``run``, ``erp``, ``openapi``, ``token`` and ``auth``.

Nothing here imports a layer at import time; layers are named by import string
(:mod:`shared.layers`), which is also what the ASGI server needs. The ``erp``
commands name the Tryton connector's runtime the same way (``ERP_COMMANDS``).
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import SettingsError
from shared.layers import ERP_COMMANDS, SANDBOXES, SERVICES
from shared.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.settings import Settings

__all__ = ("main",)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _erp_command(name: str) -> Callable[..., int]:
    """A command of the ERP runtime, named by import string as the layers' app factories are."""
    command: Callable[..., int] = getattr(importlib.import_module(ERP_COMMANDS), name)
    return command


def _serve_erp(args: argparse.Namespace) -> int:
    serve_erp = _erp_command("serve_erp")
    settings = load_settings()
    port = args.port if args.port is not None else settings.ports.erp
    return serve_erp(settings, host=args.host or settings.host, port=port)


def _erp_setup(args: argparse.Namespace) -> int:
    setup_erp = _erp_command("setup_erp")
    settings = load_settings()
    return setup_erp(
        settings,
        lines=settings.erp.seed_lines if args.lines is None else args.lines,
        variant=settings.erp.seed_variant if args.variant is None else args.variant,
        database=args.database or settings.erp.database,
        replace=args.replace,
    )


_SANDBOX_OPTIONS = {
    "fast_polling": ("--fast-polling", "planning-sandbox"),
    "fast_retries": ("--fast-retries", "crm-sandbox"),
    "listener_url": ("--listener-url", "crm-sandbox"),
    "webhook_urls": ("--webhook-url", "billing-sandbox"),
}
"""Each sandbox option of ``finsync serve`` (by its ``dest``): its flag, and the one sandbox that takes it."""


def _serve_sandbox(args: argparse.Namespace) -> int:
    module, _, attr = SANDBOXES[args.layer].partition(":")
    serve_sandbox: Callable[..., int] = getattr(importlib.import_module(module), attr)
    settings = load_settings()
    port = args.port if args.port is not None else getattr(settings.ports, args.layer.replace("-", "_"))
    options = {
        name: getattr(args, name) for name, (_, sandbox) in _SANDBOX_OPTIONS.items() if sandbox == args.layer
    }
    return serve_sandbox(settings, host=args.host or settings.host, port=port, **options)


def _serve(args: argparse.Namespace) -> int:
    if args.layer == "erp":
        return _serve_erp(args)
    if args.layer in SANDBOXES:
        return _serve_sandbox(args)
    from granian import Granian  # noqa: PLC0415 - heavy import, only for this command
    from granian.constants import Interfaces  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    from shared.redis import EmbeddedRedis  # noqa: PLC0415

    settings = load_settings()
    host = args.host or settings.host
    port = args.port if args.port is not None else getattr(settings.ports, args.layer)
    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None:
        # One Redis per data dir: reuse a running one, else start it and own it.
        redis = EmbeddedRedis(Path(settings.data_dir).resolve())
        embedded = redis if redis.start() else None
        os.environ["FINSYNC_REDIS_URL"] = redis.url
    if args.workers > 1:
        # prometheus_client chooses its value store at import, in each worker: set this first.
        metrics_dir = Path(settings.data_dir).resolve() / "metrics" / args.layer
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    server = Granian(
        SERVICES[args.layer],
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        log_access=False,
        log_level=LogLevels.warning,
    )
    try:
        server.serve()
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _up(args: argparse.Namespace) -> int:
    from shared.stack import run_stack  # noqa: PLC0415

    return run_stack(load_settings(), first_sync=args.first_sync)


def _period(value: str) -> str:
    """An argparse type: a period, ``YYYY-MM``."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a period YYYY-MM")
    return value


def _run_actuals_to_plan(args: argparse.Namespace) -> int:
    from shared.auth.local import token_url  # noqa: PLC0415
    from shared.run_command import (  # noqa: PLC0415
        EXIT_UNAVAILABLE,
        Credentials,
        RunOptions,
        default_range,
        process_url,
        run_actuals_to_plan,
    )

    settings = load_settings()
    credentials = None
    if settings.auth.enabled:
        secret = _client_secret(settings, args.client_id, args.client_secret, "finsync run actuals-to-plan")
        if secret is None:
            return EXIT_UNAVAILABLE
        credentials = Credentials(args.token_url or token_url(settings), args.client_id, secret)
    months_back = settings.flows.actuals_to_plan.months_back
    first, last = default_range(months_back)
    if args.period_from is None or args.period_to is None:
        print(
            f"periods {args.period_from or first}..{args.period_to or last} (default: this month and the "
            f"{months_back} before it, flows.actuals_to_plan.months_back)",
            file=sys.stderr,
        )
    options = RunOptions(
        process_url=args.process_url or process_url(settings),
        period_from=args.period_from or first,
        period_to=args.period_to or last,
        entities=tuple(args.entity),
        source=args.source,
        planning=args.planning,
        dry_run=args.dry_run,
        wait=not args.no_wait,
        timeout=args.timeout,
        credentials=credentials,
    )
    return run_actuals_to_plan(options, out=sys.stdout, err=sys.stderr).exit_code


def _openapi(args: argparse.Namespace) -> int:
    from shared.openapi import write_or_check  # noqa: PLC0415

    problems = write_or_check(Path(args.dir), check=args.check)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            f"finsync openapi: {len(problems)} spec(s) in {args.dir} differ from the code; "
            "run 'finsync openapi' and commit the result",
            file=sys.stderr,
        )
        return 1
    print(f"openapi specs {'match the code' if args.check else 'written'} in {args.dir}")
    return 0


def _client_secret(settings: Settings, client_id: str, given: str | None, command: str) -> str | None:
    """``given``, else the local client's secret from the data dir; None (and why, on stderr) when there is none."""
    from shared.auth.local import local_secrets_path, read_local_secrets  # noqa: PLC0415

    if given is not None:
        return given
    data_dir = Path(settings.data_dir).resolve()
    secret = read_local_secrets(data_dir).get(client_id)
    if secret is None:
        print(
            f"{command}: no secret for client {client_id!r} in {local_secrets_path(data_dir)}; "
            "run 'finsync up' first (it generates the local clients' secrets), or pass --client-secret",
            file=sys.stderr,
        )
    return secret


def _token(args: argparse.Namespace) -> int:
    from shared.auth.local import TokenError, fetch_token, token_url  # noqa: PLC0415

    settings = load_settings()
    secret = _client_secret(settings, args.client_id, args.client_secret, "finsync token")
    if secret is None:
        return 1
    url = args.url or token_url(settings)
    try:
        token = fetch_token(
            url,
            args.client_id,
            secret,
            scope=args.scope,
            audience=args.audience,
            method=args.auth_method,
        )
    except TokenError as exc:
        print(f"finsync token: {url}: {exc}", file=sys.stderr)
        return 1
    print(token["access_token"])
    return 0


def _rotate_keys(_args: argparse.Namespace) -> int:
    from shared.auth.keys import SigningKeys  # noqa: PLC0415

    keys = SigningKeys.from_settings(load_settings())
    current, previous = keys.rotate()
    print(f"signing keys in {keys.directory}: current {current}, previous {previous or '(none)'}")
    return 0


def _hash_secret(_args: argparse.Namespace) -> int:
    from shared.auth.hashing import hash_secret  # noqa: PLC0415

    if sys.stdin.isatty():
        secret = getpass.getpass("client secret: ")
        if getpass.getpass("again: ") != secret:
            print("finsync auth hash-secret: the two entries differ", file=sys.stderr)
            return 1
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        print("finsync auth hash-secret: empty secret", file=sys.stderr)
        return 1
    print(hash_secret(secret))
    return 0


def _add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``finsync run <flow>``: one subcommand per flow."""
    run = commands.add_parser("run", help="run a flow on the process layer and watch it end")
    flows = run.add_subparsers(dest="flow", required=True)
    a2p = flows.add_parser(
        "actuals-to-plan",
        help="sync the ERP's actuals into planning: start a run, show its progress, end with its "
        "reconciliation (exit 0 only when it succeeded and reconciled)",
    )
    a2p.add_argument(
        "--entity",
        action="append",
        metavar="CODE",
        default=[],
        help="a legal entity, such as FS-US; repeat for more (default: every entity of the ERP)",
    )
    a2p.add_argument(
        "--from",
        dest="period_from",
        type=_period,
        metavar="YYYY-MM",
        help="first period, YYYY-MM (default: flows.actuals_to_plan.months_back months before this one)",
    )
    a2p.add_argument(
        "--to",
        dest="period_to",
        type=_period,
        metavar="YYYY-MM",
        help="last period, YYYY-MM (default: this month)",
    )
    a2p.add_argument(
        "--dry-run", action="store_true", help="extract, map, validate and aggregate; load nothing"
    )
    a2p.add_argument("--no-wait", action="store_true", help="print the run's URL once it is queued, and exit")
    a2p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to watch before giving up (default 1800)"
    )
    a2p.add_argument("--source", help="the ERP source (default: flows.actuals_to_plan.source)")
    a2p.add_argument("--planning", help="the planning source (default: flows.actuals_to_plan.planning)")
    a2p.add_argument(
        "--process-url",
        help="the process layer (default: FINSYNC_PROCESS_URL, else http://{host}:{ports.process})",
    )
    a2p.add_argument("--client-id", default="demo", help="the client to run as (default: demo)")
    a2p.add_argument(
        "--client-secret",
        help="its secret (default: from {data_dir}/auth/local-secrets.json, written by 'finsync up')",
    )
    a2p.add_argument("--token-url", help="token endpoint (default: {issuer}/oauth/token of the local stack)")
    a2p.set_defaults(run=_run_actuals_to_plan)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finsync", description="Controlled finance-platform sync gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run one layer, the built-in authorization server (auth), the local Tryton ERP (erp) or a "
        "vendor-shaped sandbox (planning-sandbox: Anaplan, crm-sandbox: Salesforce, billing-sandbox: Stripe), "
        "as its own server process",
    )
    serve.add_argument("layer", choices=[*SERVICES, "erp", *SANDBOXES])
    serve.add_argument("--host", help="interface to bind (default: FINSYNC_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: the layer's port in the port table)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--fast-polling",
        action="store_true",
        help="planning-sandbox only, for tests: accept task polls faster than Anaplan's one every 5 s",
    )
    serve.add_argument(
        "--fast-retries",
        action="store_true",
        help="crm-sandbox only, for tests: redeliver unacknowledged outbound messages after 0.2 s, up to 1 s",
    )
    serve.add_argument(
        "--listener-url",
        help="crm-sandbox only: where outbound messages are POSTed (default: they wait queued)",
    )
    serve.add_argument(
        "--webhook-url",
        dest="webhook_urls",
        action="append",
        default=[],
        metavar="URL",
        help="billing-sandbox only, repeatable: a webhook endpoint, signed with {data_dir}/billing-sandbox/"
        "webhook_secret",
    )
    serve.set_defaults(run=_serve)

    up = commands.add_parser(
        "up",
        help="run the local stack: Redis, PostgreSQL, the Tryton ERP, the authorization server and every layer, "
        "then a first actuals-to-plan sync over the seeded ERP, then prints a curl for budget against actuals; "
        "until Ctrl-C",
    )
    up.add_argument(
        "--no-first-sync",
        dest="first_sync",
        action="store_false",
        help="skip the first actuals-to-plan sync (for stacks that do not need it, such as tests')",
    )
    up.set_defaults(run=_up)

    _add_run_parser(commands)

    erp = commands.add_parser("erp", help="manage the local Tryton ERP")
    erp_commands = erp.add_subparsers(dest="erp_command", required=True)
    setup = erp_commands.add_parser(
        "setup",
        help="create the ERP database, seeded, from a cached PostgreSQL template (built on first use)",
    )
    setup.add_argument(
        "--lines", type=int, help="about how many journal lines to seed (default: erp.seed_lines)"
    )
    setup.add_argument("--variant", type=int, help="which content to seed (default: erp.seed_variant)")
    setup.add_argument("--database", help="the database to create (default: erp.database)")
    setup.add_argument("--replace", action="store_true", help="drop the database first if it exists")
    setup.set_defaults(run=_erp_setup)

    openapi = commands.add_parser("openapi", help="write openapi/*.json from the code, or check them")
    openapi.add_argument(
        "--check", action="store_true", help="exit 1 when a committed spec differs from the code"
    )
    openapi.add_argument("--dir", default="openapi", help="where the specs live (default: openapi)")
    openapi.set_defaults(run=_openapi)

    token = commands.add_parser("token", help="print an access token from the local authorization server")
    token.add_argument("--client-id", default="demo", help="client (default: demo)")
    token.add_argument(
        "--client-secret",
        help="its secret (default: from {data_dir}/auth/local-secrets.json, written by 'finsync up')",
    )
    token.add_argument("--scope", help="space-separated scopes (default: all of the client's)")
    token.add_argument(
        "--audience", default="finsync-experience", help="audience (default: finsync-experience)"
    )
    token.add_argument(
        "--auth-method",
        choices=["client_secret_basic", "client_secret_post"],
        default="client_secret_basic",
        help="how the client authenticates (default: client_secret_basic)",
    )
    token.add_argument("--url", help="token endpoint (default: {issuer}/oauth/token of the local stack)")
    token.set_defaults(run=_token)

    auth = commands.add_parser("auth", help="manage the built-in authorization server")
    auth_commands = auth.add_subparsers(dest="auth_command", required=True)
    rotate = auth_commands.add_parser(
        "rotate-keys", help="make the current signing key the previous one and generate a new current key"
    )
    rotate.set_defaults(run=_rotate_keys)
    hashing = auth_commands.add_parser(
        "hash-secret", help="print the secret_hash of a client secret read from stdin (or prompted for)"
    )
    hashing.set_defaults(run=_hash_secret)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``finsync`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        for name, (flag, sandbox) in _SANDBOX_OPTIONS.items():
            if getattr(args, name) and args.layer != sandbox:
                parser.error(f"{flag} is for {sandbox} only")
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"finsync: {exc.detail}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
