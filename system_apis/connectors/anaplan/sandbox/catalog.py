"""The fixed ids and names of what the sandbox serves: one workspace, one model, three lists, two files, one
import and one export.

Ids look like Anaplan's (32 hex digits for workspaces and models, 12 digits with
a kind prefix for the rest) and never change, so a finsync source can name them
in its configuration. An export's file has the export's id, as in Anaplan.
"""

from __future__ import annotations

__all__ = (
    "ACCOUNTS_LIST_ID",
    "COST_CENTRES_LIST_ID",
    "ENTITIES_LIST_ID",
    "EXPORT_FILE_NAME",
    "EXPORT_ID",
    "EXPORT_NAME",
    "IMPORT_FILE_ID",
    "IMPORT_FILE_NAME",
    "IMPORT_ID",
    "IMPORT_NAME",
    "MODEL_ID",
    "MODEL_NAME",
    "USER_ID",
    "WORKSPACE_ID",
    "WORKSPACE_NAME",
    "WORKSPACE_SIZE_ALLOWANCE",
)

WORKSPACE_ID = "8a868cdd7bd6c9ae017be7d4c9a72a49"
"""The one workspace."""
WORKSPACE_NAME = "FP&A (sandbox)"
"""Its name."""
WORKSPACE_SIZE_ALLOWANCE = 10 * 1024**3
"""Bytes the workspace may hold (Anaplan sells workspaces by size)."""
MODEL_ID = "75A40874E6B64FA3AE0743278996850F"
"""The one model."""
MODEL_NAME = "Finance Plan (sandbox)"
"""Its name."""
USER_ID = "8a868cdd7bd6c9ae017be7d4c9a70001"
"""Id of the one user (``/token/validate`` names it)."""

ENTITIES_LIST_ID = "101000000001"
"""``E1 Entities``: the ERP seed's companies."""
ACCOUNTS_LIST_ID = "101000000002"
"""``A1 Accounts``: the ERP seed's accounts."""
COST_CENTRES_LIST_ID = "101000000003"
"""``C1 Cost Centres``: the ERP seed's cost centres and ``UNALLOCATED``."""

IMPORT_FILE_ID = "113000000001"
"""The import data source: the file finsync uploads cells into."""
IMPORT_FILE_NAME = "Planning Data Load.csv"
"""Its name."""
IMPORT_ID = "112000000001"
"""The import action that loads cells from :data:`IMPORT_FILE_ID` into a version."""
IMPORT_NAME = "Planning Data Load"
"""Its name."""
EXPORT_ID = "116000000001"
"""The export action that writes every cell of every version; its file has the same id."""
EXPORT_NAME = "Planning Data Export"
"""Its name."""
EXPORT_FILE_NAME = "Planning Data Export.csv"
"""Its file's name."""
