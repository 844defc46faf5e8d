"""Access to the warehouse: a small port with a Redshift Data API adapter."""

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
