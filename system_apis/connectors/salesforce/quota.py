"""The org's daily API allowance, as every answer reports it, and the share of it the connector may use.

Salesforce counts every REST call of every integration of the org against one
daily allowance, and answers ``403 REQUEST_LIMIT_EXCEEDED`` once it is spent,
to everyone. Each answer says where the org stands (``Sforce-Limit-Info:
api-usage=used/allowed``), so the connector keeps the last reading and stops
itself at ``allowed * (1 - quota_reserve)``: the reserve stays for the other
integrations and for people working in the org.

Calls in flight count as used, so concurrent calls cannot overshoot the
budget together. Past it, calls are refused here, without reaching the org,
with ``Retry-After``; the usage only falls as Salesforce's rolling 24 hours
move on, which only an answer can tell, so one call every
:data:`PROBE_INTERVAL` seconds is let through to read the header again.
"""

from __future__ import annotations

import math
import re
import time

from shared.errors import UpstreamUnavailableError

__all__ = ("LIMIT_HEADER", "PROBE_INTERVAL", "Quota")

LIMIT_HEADER = "Sforce-Limit-Info"
"""The header every Salesforce answer carries: ``api-usage=used/allowed``."""
PROBE_INTERVAL = 60.0
"""Seconds between two calls let through, past the budget, to read the usage again."""
_USAGE = re.compile(r"(?:^|[\s,;])api-usage=(\d+)/(\d+)")


class Quota:
    """The last reading of the org's API usage, and the calls in flight; decides whether a call may go."""

    def __init__(self, reserve: float, probe_interval: float = PROBE_INTERVAL) -> None:
        """Nothing known yet: calls go until an answer reports the usage."""
        self.reserve = reserve
        """Share of the allowance left to others."""
        self.probe_interval = probe_interval
        """Seconds between two calls let through past the budget."""
        self.used: int | None = None
        """Calls the org counted, as last reported."""
        self.allowed: int | None = None
        """The org's daily allowance, as last reported."""
        self.in_flight = 0
        """Calls sent (or waiting for a connection) whose answer has not come yet."""
        self.refused = 0
        """Calls refused here, past the budget."""
        self.probes = 0
        """Calls let through past the budget, to read the usage again."""
        self._over_since: float | None = None

    @property
    def budget(self) -> int | None:
        """Calls the connector may have made: ``allowed * (1 - reserve)``; ``None`` while unknown."""
        if self.allowed is None:
            return None
        return math.floor(self.allowed * (1 - self.reserve))

    def observe(self, header: str | None) -> None:
        """Keep the usage an answer reported (``Sforce-Limit-Info``); answers without it change nothing."""
        match = _USAGE.search(header or "")
        if match is None:
            return
        self.used, self.allowed = int(match.group(1)), int(match.group(2))
        budget = self.budget
        assert budget is not None
        if self.used < budget:
            self._over_since = None
        elif self._over_since is None:
            self._over_since = time.monotonic()

    def acquire(self) -> None:
        """Take a place for one call; pair with :meth:`release` once it is answered (or failed).

        Raises:
            UpstreamUnavailableError: the budget is used (503, with ``Retry-After``); the call must not be made.
        """
        budget = self.budget
        if self.used is None or budget is None or self.used + self.in_flight < budget:
            self.in_flight += 1
            return
        now = time.monotonic()
        if self._over_since is None:
            # Not over by the reading, only by the calls in flight: their answers come in a moment.
            retry_after = 1
        else:
            waited = now - self._over_since
            if waited >= self.probe_interval and self.in_flight == 0:
                self._over_since = now
                self.probes += 1
                self.in_flight += 1
                return
            retry_after = max(1, math.ceil(self.probe_interval - waited))
        self.refused += 1
        raise UpstreamUnavailableError(
            f"the CRM org's daily API allowance is used up to the share left to others: {self.used} of "
            f"{self.allowed} calls used, this source stops at {budget} (quota_reserve {self.reserve:g})",
            headers={"Retry-After": str(retry_after)},
            quota_used=self.used,
            quota_allowed=self.allowed,
        )

    def release(self) -> None:
        """The call's answer came (and was observed), or it failed."""
        self.in_flight -= 1
