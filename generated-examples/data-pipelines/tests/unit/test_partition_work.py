"""Which of a partition's records may be handled now, and how far it may be committed."""

from aiokafka import ConsumerRecord

from order_pipelines.kafka.partition_work import PartitionWork


def record(offset: int, key: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, key, b"v", None, 1, 1, [])


def offsets(records: list[ConsumerRecord[bytes, bytes]]) -> list[int]:
    return [r.offset for r in records]


def test_one_key_waits_for_its_previous_record_while_other_keys_start() -> None:
    work = PartitionWork(concurrency=4)
    work.add([record(10, b"a"), record(11, b"a"), record(12, b"b"), record(13, b"c"), record(14, b"a")])
    assert offsets(work.start()) == [10, 12, 13]
    assert offsets(work.start()) == [], "a's next record waits for 10"
    work.finish(10)
    assert offsets(work.start()) == [11]
    work.finish(11)
    assert offsets(work.start()) == [14], "then a's records go on in offset order"


def test_no_more_than_concurrency_records_at_once() -> None:
    work = PartitionWork(concurrency=2)
    work.add([record(offset, bytes([offset])) for offset in range(5)])
    assert offsets(work.start()) == [0, 1]
    work.finish(1)
    assert offsets(work.start()) == [2]
    assert work.in_flight == 2
    assert work.waiting == 2


def test_concurrency_one_is_one_record_after_another_in_offset_order() -> None:
    work = PartitionWork(concurrency=1)
    work.add([record(0, b"a"), record(1, b"b")])
    assert offsets(work.start()) == [0]
    assert offsets(work.start()) == []
    work.finish(0)
    assert offsets(work.start()) == [1]


def test_commit_offset_is_the_lowest_unfinished_record() -> None:
    work = PartitionWork(concurrency=3)
    assert work.commit_offset is None, "nothing fetched: nothing to commit"
    work.add([record(5, b"a"), record(7, b"b"), record(9, b"c")])  # offsets may have gaps (compaction, markers)
    work.start()
    work.finish(7)
    work.finish(9)
    assert work.commit_offset == 5, "7 and 9 are done, but 5 is not: a crash must repeat 5"
    work.finish(5)
    assert work.commit_offset == 10


def test_a_record_fetched_again_is_queued_once() -> None:
    work = PartitionWork(concurrency=2)
    work.add([record(0, b"a"), record(1, b"b")])
    work.add([record(1, b"b"), record(2, b"c")])
    assert offsets(work.start()) == [0, 1]
    assert work.waiting == 1
    assert work.first_offset == 0


def test_a_released_record_frees_its_key_but_holds_the_commit_until_finished() -> None:
    work = PartitionWork(concurrency=1)
    work.add([record(0, b"a"), record(1, b"a")])
    assert offsets(work.start()) == [0]
    work.release(0)  # its writes are queued: the key's next record may go
    assert offsets(work.start()) == [1]
    assert work.commit_offset == 0, "0 is not acknowledged yet"
    work.finish(1)
    assert work.commit_offset == 0
    work.finish(0)
    assert work.commit_offset == 2
