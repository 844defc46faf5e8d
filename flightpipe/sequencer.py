"""The order of the versions of one object key: S3's event ``sequencer``, as the ledger keeps it.

S3 gives no version an order number, and its events arrive in any order; what it documents
for ordering the events of one key is their ``sequencer``
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html:
"If you compare the sequencer strings from two event notifications on the same object key,
the event notification with the greater sequencer hexadecimal value is the event that
occurred later"; sequencers "can be of different lengths", so the shorter is padded with
zeros on the left before comparing). EventBridge's "Object Created" events carry the same
value as ``detail.object.sequencer``
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html).

The ledger keeps an *ordering key* per attempt, so that plain string comparison in SQL (on
Redshift and on the local PostgreSQL, whatever its collation) is the documented comparison:
the hexadecimal value in upper case, left-padded with zeros to :data:`DIGITS` digits.

An execution without an event (``flightpipe backfill`` re-driving a file) has no sequencer
of its own. Backfill re-drives the *current* version of a key, and reuses the ordering key
the ledger recorded for that version when one of its attempts recorded it (its event's).
Otherwise the version was current when the ledger was read, so it is newer than every
version the ledger knows of the key and older than every version uploaded after: its key is
:func:`after` the greatest recorded one — the greatest key followed by ``+``, greater than
that key and than every key up to it, and smaller than any greater sequencer.
"""

from __future__ import annotations

import re
from typing import Optional

# Digits of an ordering key: S3's sequencers are far shorter (16 to 18 in AWS's examples).
DIGITS = 64
# Appended by after(): a key that sorts just after the one it extends.
AFTER = "+"
_KEY = re.compile(rf"([0-9A-Fa-f]{{1,{DIGITS}}})(\+{{0,{DIGITS}}})")


class SequencerError(ValueError):
    """A sequencer that is not a hexadecimal string S3 could have sent."""


def ordering_key(sequencer: Optional[str]) -> Optional[str]:
    """The ordering key of an S3 sequencer (or of a key :func:`after` made); None for none.

    ``"617f08299329d189"`` becomes 48 zeros followed by ``"617F08299329D189"``; a key is
    returned as it is, so normalising twice changes nothing.
    """
    text = (sequencer or "").strip()
    if not text:
        return None
    match = _KEY.fullmatch(text)
    if match is None:
        raise SequencerError(
            f"sequencer {sequencer!r} is not a hexadecimal string of at most {DIGITS} digits"
        )
    return match.group(1).upper().rjust(DIGITS, "0") + match.group(2)


def after(key: Optional[str]) -> str:
    """The ordering key just after ``key`` (just after zero when there is none): greater than
    ``key`` and every key below it, smaller than every key above it."""
    return (ordering_key(key) or "0" * DIGITS) + AFTER
