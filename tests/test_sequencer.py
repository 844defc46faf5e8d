"""Ordering keys: S3's sequencers compared as AWS documents, and the key of a re-drive."""

from __future__ import annotations

import random

import pytest

from flightpipe.sequencer import DIGITS, SequencerError, after, ordering_key


def test_sequencers_of_different_lengths_order_as_their_hexadecimal_values() -> None:
    shorter, longer = "FFFFFFFFFFFFFFFF", "00100000000000000000"  # 16 and 20 digits
    assert int(shorter, 16) < int(longer, 16)
    assert shorter > longer  # as bare strings they would compare the wrong way
    assert ordering_key(shorter) < ordering_key(longer)


def test_ordering_keys_compare_as_the_values_of_random_sequencers() -> None:
    generator = random.Random(18)
    values = [generator.randrange(16**20) for _ in range(300)]
    texts = [f"{value:0{generator.randrange(1, 4)}x}" for value in values]
    texts = [text.upper() if generator.random() < 0.5 else text for text in texts]
    keys = [ordering_key(text) for text in texts]
    assert sorted(keys) == [ordering_key(f"{value:x}") for value in sorted(values)]


def test_an_ordering_key_is_upper_case_left_padded_and_normalises_to_itself() -> None:
    key = ordering_key("617f08299329d189")
    assert key == "0" * (DIGITS - 16) + "617F08299329D189"
    assert ordering_key(key) == key
    assert ordering_key(after(key)) == after(key)


@pytest.mark.parametrize("missing", [None, "", "  "])
def test_no_sequencer_has_no_key(missing) -> None:
    assert ordering_key(missing) is None


@pytest.mark.parametrize("text", ["12G4", "0x12", "-1", "1" * (DIGITS + 1), "+", "12+3"])
def test_a_sequencer_that_is_not_hexadecimal_is_refused(text: str) -> None:
    with pytest.raises(SequencerError):
        ordering_key(text)


def test_the_key_after_another_sorts_above_it_and_below_every_greater_key() -> None:
    recorded = ordering_key("0055AED6DCD90281E5")
    assert recorded is not None
    redrive = after(recorded)
    assert recorded < redrive < ordering_key("0055AED6DCD90281E6")
    assert ordering_key("0055AED6DCD90281E4") < redrive
    assert redrive < after(redrive) < ordering_key("0055AED6DCD90281E6")
    assert after(None) == "0" * DIGITS + "+"
    assert after(None) < ordering_key("1")
