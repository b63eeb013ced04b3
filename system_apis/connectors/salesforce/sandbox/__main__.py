"""``python -m system_apis.connectors.salesforce.sandbox``: run the CRM sandbox on its own (tests, local use).

::

    python -m system_apis.connectors.salesforce.sandbox --port 8122 --data-dir .finsync \\
        [--config crm-sandbox.toml] [--listener-url URL] [--fast-retries] [--opportunities N]

``--config`` names a TOML file whose keys are :class:`~.config.CrmSandboxConfig`'s
(``[outbound]`` for the outbound message); the flags override it.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from shared.errors import SettingsError
from system_apis.connectors.salesforce.sandbox.config import DEFAULT_PORT, CrmSandboxConfig
from system_apis.connectors.salesforce.sandbox.server import serve_config


def _config(args: argparse.Namespace) -> CrmSandboxConfig:
    raw: dict[str, Any] = {}
    if args.config:
        try:
            raw = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"--config {args.config}: {exc}") from exc
    if args.data_dir:
        raw["data_dir"] = args.data_dir
    if args.log_level:
        raw["log_level"] = args.log_level
    if args.opportunities is not None:
        raw["seed_opportunities"] = args.opportunities
    if args.listener_url:
        raw.setdefault("outbound", {})["listener_url"] = args.listener_url
    try:
        config = msgspec.convert(raw, CrmSandboxConfig)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid CRM sandbox setting: {exc}") from exc
    if args.fast_retries:
        config = msgspec.structs.replace(config, outbound=config.outbound.fast())
    return config


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m system_apis.connectors.salesforce.sandbox",
        description="The CRM sandbox: a Salesforce-shaped stand-in for tests, NOT Salesforce.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (keep it on loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", help="where the generated secrets go ({data_dir}/crm-sandbox)")
    parser.add_argument("--config", help="TOML file of CrmSandboxConfig keys")
    parser.add_argument("--listener-url", help="where outbound messages are POSTed")
    parser.add_argument(
        "--fast-retries", action="store_true", help="tests only: redeliver after 0.2 s, up to 1 s"
    )
    parser.add_argument("--opportunities", type=int, help="opportunities to seed")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ...")
    args = parser.parse_args(argv)
    try:
        return serve_config(_config(args), host=args.host, port=args.port)
    except SettingsError as exc:
        print(f"crm-sandbox: {exc}", file=sys.stderr)  # noqa: T201 - a command-line error
        return 2


if __name__ == "__main__":
    sys.exit(main())
