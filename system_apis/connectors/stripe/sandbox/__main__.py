"""``python -m system_apis.connectors.stripe.sandbox --port N --secret-key-file F``: run the billing sandbox.

A sandbox shaped like Stripe, not Stripe. The secret key file is created
(``sk_test_…``, mode 0600) when it does not exist. Webhook endpoints given with
``--webhook URL`` share the secret in ``--webhook-secret-file``.
"""

from __future__ import annotations

import argparse
import sys

from shared.errors import SettingsError
from system_apis.connectors.stripe.sandbox.config import (
    BillingSandboxConfig,
    WebhookEndpointConfig,
    WebhookTimings,
    ensure_secret_key,
)
from system_apis.connectors.stripe.sandbox.server import DEFAULT_PORT, serve_sandbox


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m system_apis.connectors.stripe.sandbox",
        description="The billing sandbox: a local Stripe-shaped server for tests (not Stripe).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface (default 127.0.0.1; keep it on loopback)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--secret-key-file", required=True, help="file with the sk_test_ key (created if missing)"
    )
    parser.add_argument("--seed-variant", type=int, default=1, help="ERP seed variant of the customer names")
    parser.add_argument("--webhook", action="append", default=[], metavar="URL", help="a webhook endpoint")
    parser.add_argument(
        "--webhook-secret-file", help="file with the whsec_ secret of the --webhook endpoints"
    )
    defaults = WebhookTimings()
    parser.add_argument("--webhook-retry-base", type=float, default=defaults.retry_base)
    parser.add_argument("--webhook-retry-factor", type=float, default=defaults.retry_factor)
    parser.add_argument("--webhook-retry-horizon", type=float, default=defaults.retry_horizon)
    parser.add_argument("--webhook-timeout", type=float, default=defaults.timeout)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.webhook and not args.webhook_secret_file:
        parser.error("--webhook needs --webhook-secret-file")
    config = BillingSandboxConfig(
        secret_key_file=str(ensure_secret_key(args.secret_key_file)),
        seed_variant=args.seed_variant,
        webhook_endpoints=tuple(
            WebhookEndpointConfig(url=url, secret_file=args.webhook_secret_file) for url in args.webhook
        ),
        webhooks=WebhookTimings(
            retry_base=args.webhook_retry_base,
            retry_factor=args.webhook_retry_factor,
            retry_horizon=args.webhook_retry_horizon,
            timeout=args.webhook_timeout,
        ),
        log_level=args.log_level,
    )
    try:
        return serve_sandbox(config, host=args.host, port=args.port)
    except SettingsError as exc:
        print(f"billing sandbox: {exc}", file=sys.stderr)  # noqa: T201 - a command-line error
        return 2


if __name__ == "__main__":
    sys.exit(main())
