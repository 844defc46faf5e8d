"""Access to the warehouse: a small port, a Redshift Data API adapter, and the setup
the prepare step runs (:mod:`flightpipe.warehouse.setup`)."""

from __future__ import annotations

from flightpipe.warehouse.data_api import DataApiWarehouse, WarehouseTarget
from flightpipe.warehouse.port import (
    StatementError,
    StatementTimeoutError,
    Warehouse,
    WarehouseThrottledError,
)

__all__ = [
    "DataApiWarehouse",
    "StatementError",
    "StatementTimeoutError",
    "Warehouse",
    "WarehouseTarget",
    "WarehouseThrottledError",
]
