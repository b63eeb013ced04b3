"""The planner's workbench on the process layer: budget against actuals, and the freshness of actuals.

The experience layer serves the same routes to planners and calls these ones;
the work is done here, over the system layer (planning cells, the ERP's legal
entities) and the control ledger (what actuals-to-plan loaded, and whether it
reconciled). Every read is recorded in the audit trail with the original caller.
See ``docs/workbench.md``.
"""

from __future__ import annotations

from process_apis.workbench.controller import WorkbenchController

__all__ = ("WorkbenchController",)
