"""Why a whole file is turned away."""

from __future__ import annotations


class FileRejected(Exception):
    """The whole file is rejected: nothing is loaded and the ledger records the reason.

    Raised for an object that is not an accepted format (flightpipe.etl.sources),
    an empty object, a missing header, missing required columns, binary
    content, or more rejected rows than the job's threshold allows.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
