"""fyp/deadletters.py: dead letters decoded, selected by reason and time, and summarised (no Kafka)."""

from __future__ import annotations

from fyp.deadletters import decode_dead_letter, select, summarize
from udfs.dead_letter import dead_letter_payload


def _letter(offset: int, reason: str, failed_at_ms: int, key: bytes | None = b"u1"):
    value = dead_letter_payload("fyp.engagement.v1", 3, 100 + offset, reason, b"payload", key=key,
                                failed_at_ms=failed_at_ms)
    return decode_dead_letter(0, offset, value, [("trace", b"t1")])


def test_a_dead_letter_keeps_the_original_key_payload_and_headers():
    letter = _letter(0, "too_long:comment_text", 1_000)
    assert (letter.key, letter.payload, letter.topic, letter.partition, letter.offset) == (
        b"u1", b"payload", "fyp.engagement.v1", 3, 100)
    assert letter.headers == (("trace", b"t1"),)
    assert letter.summary()["key"] == "u1" and letter.summary()["payload_bytes"] == 7


def test_an_unreadable_record_is_counted_not_hidden():
    letter = decode_dead_letter(0, 5, b"garbage")
    assert letter.reason == "unreadable_dead_letter" and letter.payload == b"garbage"


def test_select_by_reason_family_and_time_range():
    letters = [_letter(0, "too_long:comment_text", 1_000), _letter(1, "too_long:user_id", 2_000),
               _letter(2, "bad_id:user_id", 3_000), _letter(3, "too_long_but_not_family", 4_000)]
    assert [x.dlq_offset for x in select(letters, reasons=("too_long",))] == [0, 1]
    assert [x.dlq_offset for x in select(letters, reasons=("bad_id:user_id", "too_long:user_id"))] == [1, 2]
    assert [x.dlq_offset for x in select(letters, since_ms=2_000, until_ms=4_000)] == [1, 2]
    assert len(list(select(letters))) == 4


def test_summary_counts_by_reason_with_samples():
    letters = [_letter(i, "bad_id:user_id" if i % 3 else "out_of_range:watch_ms", i) for i in range(10)]
    summary = summarize(letters, samples_per_reason=2)
    assert summary.total == 10
    assert summary.by_reason == {"bad_id:user_id": 6, "out_of_range:watch_ms": 4}
    assert list(summary.by_reason) == ["bad_id:user_id", "out_of_range:watch_ms"]  # most frequent first
    assert [s["dlq_offset"] for s in summary.samples["out_of_range:watch_ms"]] == [0, 3]
