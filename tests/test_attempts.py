"""Which earlier attempts the next one settles, from the heartbeat the server kept."""

from __future__ import annotations

from activities.attempts import AttemptBeat, LostAttempt, attempt_key, lost_attempts


def test_a_first_attempt_settles_nothing() -> None:
    assert lost_attempts((), 1) == []


def test_the_last_beater_is_costed_until_its_heartbeat_stopped_and_later_ones_spent_nothing() -> None:
    beat = AttemptBeat(attempt=2, started_at=100.0, beat_at=107.5).model_dump()
    lost = lost_attempts(({"noise": 1}, beat), 4)
    assert [(x.attempt, x.seconds) for x in lost] == [(2, 7.5), (3, 0.0)]


def test_without_a_beat_every_earlier_attempt_gets_a_row_without_cost() -> None:
    assert [(x.attempt, x.seconds) for x in lost_attempts((), 3)] == [(1, 0.0), (2, 0.0)]


def test_a_modal_checkpoint_names_the_call_that_bills_the_dead_attempts() -> None:
    checkpoint = {"function": "f", "call_id": "fc-1", "spawned_at": 1.0, "finished": False}
    [lost] = lost_attempts((checkpoint,), 2)
    assert lost == LostAttempt(1, 0.0, lost.reason, "fc-1") and "fc-1" in lost.reason


def test_the_key_is_the_one_the_attempt_itself_writes() -> None:
    assert attempt_key("wf", "run", "7", 2) == "wf/run/7/attempt-2"
