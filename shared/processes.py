"""Child processes that cannot outlive the process that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ("die_with_parent", "pid_alive", "set_parent_death_signal")

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies. Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum)


def die_with_parent() -> None:
    """``preexec_fn`` for ``Popen``: the kernel sends the child SIGTERM when its parent dies.

    Signal handlers cover Ctrl-C and SIGTERM; this covers the owner being killed
    with SIGKILL, which no handler sees. Linux only; elsewhere a no-op.
    """
    set_parent_death_signal(signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
