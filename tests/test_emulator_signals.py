"""SIGTERM and SIGHUP become an exception that lets the local stack stop; never mid-cleanup."""

from __future__ import annotations

import os
import signal
import time

import pytest

from flightpipe_local.signals import Terminated, deferred, terminate_on


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode of the main thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_raises_terminated_and_the_handlers_are_restored(signum: int) -> None:
    before = signal.getsignal(signum)
    cleaned = []
    with pytest.raises(Terminated) as raised, terminate_on():
        try:
            send(signum)
            pytest.fail("the signal did not interrupt the command")
        finally:
            cleaned.append(True)
    assert cleaned == [True]
    assert raised.value.exit_status == 128 + signum
    assert str(raised.value) == f"stopped by {signal.Signals(signum).name}"
    assert signal.getsignal(signum) is before


def test_a_signal_during_a_deferred_section_is_raised_when_it_ends() -> None:
    steps = []
    with pytest.raises(Terminated), terminate_on():
        with deferred():
            send(signal.SIGTERM)
            steps.append("section ran to its end")
        steps.append("never reached")
    assert steps == ["section ran to its end"]


def test_later_signals_cannot_cut_the_cleanup_the_first_one_started() -> None:
    steps = []
    with pytest.raises(Terminated), terminate_on():
        try:
            send(signal.SIGTERM)
        finally:
            send(signal.SIGTERM)
            send(signal.SIGHUP)
            steps.append("cleanup finished")
    assert steps == ["cleanup finished"]


def test_without_terminate_on_deferred_changes_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with deferred():
        assert signal.getsignal(signal.SIGTERM) is before
