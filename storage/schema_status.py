"""Where a database's schema stands against the migrations shipped (for `cxbot doctor`).

Reads only: unlike `open_database`, nothing is migrated, so the answer describes the database
as the operator left it.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from storage.database import MIGRATIONS_DIR, safe_url
from storage.errors import StorageError


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The database's revision (None: never migrated) and the newest shipped one."""

    current: str | None
    head: str | None

    @property
    def at_head(self) -> bool:
        """Whether the schema is the newest one."""
        return self.current == self.head


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the database's migration revision; StorageError when the database does not answer."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StorageError(
            f"database {safe_url(str(engine.url))} does not answer: {reason}"
        ) from None
    return SchemaStatus(current=current, head=head)
