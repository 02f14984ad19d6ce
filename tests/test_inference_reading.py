"""Reading a partition: threads for load_input, chunks of load_many in reader processes, bad inputs kept apart."""

import os

import pytest

from deepscope.core import partition_reading
from deepscope.core.inference import load_partition
from deepscope.core.partition_reading import reader_processes
from deepscope.core.sources import InputStream
from deepscope.errors import FormatError


class Chunked:
    """A toy predictor with load_many: each input's text and the process that read it; 'bad' files fail."""

    def load_input(self, path):
        (item,) = self.load_many([path])
        if isinstance(item, Exception):
            raise item
        return item

    @property
    def load_many(self):
        return read_texts

    def rows(self, items):
        return [{"text": text} for text, _ in items]


def read_texts(paths):
    out = []
    for path in paths:
        text = path.read_text()
        if text == "bad":
            out.append(FormatError(f"{path}: bad content"))
        elif text == "crash":
            out.append(ZeroDivisionError("division by zero"))
        else:
            out.append((text, os.getpid()))
    return out


@pytest.fixture
def refs(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i:02d}.txt").write_text({7: "bad", 21: "crash"}.get(i, f"item{i}"))
    return list(InputStream([tmp_path], [".txt"]))


def _expected_failures(refs):
    return [(refs[7].name, f"{refs[7].name}: bad content"),
            (refs[21].name, "cannot read (ZeroDivisionError: division by zero)")]


def test_chunks_on_threads_keep_order_and_list_bad_inputs(refs):
    names, items, failures = load_partition(Chunked(), refs, read_threads=2)
    good = [ref.name for i, ref in enumerate(refs) if i not in (7, 21)]
    assert names == good and [text for text, _ in items] == [f"item{i}" for i in range(40) if i not in (7, 21)]
    assert failures == _expected_failures(refs)
    assert {pid for _, pid in items} == {os.getpid()}


@pytest.mark.distributed
def test_reader_processes_give_what_threads_give(refs, monkeypatch):
    monkeypatch.setattr(partition_reading, "MIN_INPUTS_FOR_PROCESSES", 10)
    monkeypatch.setattr(partition_reading, "CHUNK_SIZE", 8)
    threaded = load_partition(Chunked(), refs, read_threads=2)
    with reader_processes(Chunked(), 2) as processes:
        assert processes is not None
        names, items, failures = load_partition(Chunked(), refs, 2, processes)
        few = load_partition(Chunked(), refs[:5], 2, processes)  # below the threshold: read here
    assert (names, [text for text, _ in items], failures) == (threaded[0], [t for t, _ in threaded[1]], threaded[2])
    assert os.getpid() not in {pid for _, pid in items}
    assert {pid for _, pid in few[1]} == {os.getpid()}


def test_predictor_without_load_many_gets_no_processes():
    class Plain:
        def load_input(self, path):
            return path

    with reader_processes(Plain(), 2) as processes:
        assert processes is None
    with reader_processes(Chunked(), 1) as processes:
        assert processes is None


@pytest.mark.distributed
def test_a_dead_reader_process_costs_no_inputs(refs, monkeypatch):
    monkeypatch.setattr(partition_reading, "MIN_INPUTS_FOR_PROCESSES", 10)
    with reader_processes(Chunked(), 2) as processes:
        processes.submit(os._exit, 1).exception()  # breaks the pool, as a crashed decoder would
        names, items, failures = load_partition(Chunked(), refs, 2, processes)
    assert len(names) == 38 and failures == _expected_failures(refs)
    assert {pid for _, pid in items} == {os.getpid()}
