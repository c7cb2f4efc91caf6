"""Wiring: settings → database → flows → engine. Built once per command, never at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings, load_settings
from bot.engine import Engine
from bot.flow_catalog import FlowCatalog
from bot.invitations.touchpoints import check_touchpoint_flows
from bot.log_format import use_json_logs
from bot.log_redaction import configured_secrets, install_redaction
from storage.database import Database, open_database


@dataclass(frozen=True, slots=True)
class App:
    """Everything a command needs, built from one validated Settings."""

    settings: Settings
    db: Database
    catalog: FlowCatalog
    engine: Engine

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()


def build_app(settings: Settings) -> App:
    """Load the flows first (a broken flow file stops start-up), then open and migrate the DB."""
    catalog = FlowCatalog.load(settings.flows.dirs)
    catalog.get(settings.flows.default)  # the default flow must exist
    check_touchpoint_flows(settings, catalog)  # and those of [touchpoints.NAME]
    db = open_database(settings.database_url, echo=settings.database.echo)
    return App(
        settings=settings,
        db=db,
        catalog=catalog,
        engine=Engine(db=db, catalog=catalog, settings=settings),
    )


def configure_logging(settings: Settings) -> None:
    """Log to standard error at the configured level, with every configured secret redacted
    from every record (`bot.log_redaction`)."""
    install_redaction(configured_secrets(settings))
    logging.basicConfig(
        level=settings.general.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.general.log_format == "json":
        use_json_logs()
    if settings.general.log_level != "DEBUG":
        # Alembic narrates every start-up at INFO; only its problems matter to an operator.
        logging.getLogger("alembic").setLevel(logging.WARNING)


def command_settings(config_path: Path | None) -> Settings:
    """Load and validate the settings once for a command, and set up logging from them."""
    settings = load_settings(config_path)
    configure_logging(settings)
    return settings
