"""Storage: the DuckDB workspace. All SQL of the studio lives in this package."""
from .db import LATEST_VERSION, Workspace, WorkspaceError, WorkspaceLockedError

__all__ = ["LATEST_VERSION", "Workspace", "WorkspaceError", "WorkspaceLockedError"]
