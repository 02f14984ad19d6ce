"""Reading a partition: threads for load_input, chunks of load_many in reader processes, bad inputs kept apart."""

import os

import pytest

from deepscope.core.batch import reading
from deepscope.core.batch.reading import load_partition, reader_processes
from deepscope.core.batch.sources import InputStream
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
    names, items, carried, failures = load_partition(Chunked(), refs, read_threads=2)
    good = [ref.name for i, ref in enumerate(refs) if i not in (7, 21)]
    assert names == good and [text for text, _ in items] == [f"item{i}" for i in range(40) if i not in (7, 21)]
    assert failures == _expected_failures(refs) and carried is None
    assert {pid for _, pid in items} == {os.getpid()}


def test_carried_columns_of_the_good_inputs_are_kept(refs):
    loaded = load_partition(Chunked(), refs, 2, carried=[{"i": i} for i in range(40)])
    assert [extra["i"] for extra in loaded.carried] == [i for i in range(40) if i not in (7, 21)]


@pytest.mark.distributed
def test_reader_processes_give_what_threads_give(refs, monkeypatch):
    monkeypatch.setattr(reading, "MIN_INPUTS_FOR_PROCESSES", 10)
    monkeypatch.setattr(reading, "CHUNK_SIZE", 8)
    threaded = load_partition(Chunked(), refs, read_threads=2)
    with reader_processes(Chunked(), 2) as processes:
        assert processes is not None
        names, items, _, failures = load_partition(Chunked(), refs, 2, processes)
        few = load_partition(Chunked(), refs[:5], 2, processes)  # below the threshold: read here
    assert (names, [text for text, _ in items], failures) == (threaded[0], [t for t, _ in threaded[1]], threaded[3])
    assert os.getpid() not in {pid for _, pid in items}
    assert {pid for _, pid in few.items} == {os.getpid()}


def test_no_processes_without_load_many_or_when_not_wanted():
    class Plain:
        def load_input(self, path):
            return path

    for predictor, readers, wanted in ((Plain(), 2, True), (Chunked(), 1, True), (Chunked(), 2, False)):
        with reader_processes(predictor, readers, wanted) as processes:
            assert processes is None


@pytest.mark.distributed
def test_a_dead_reader_process_costs_no_inputs(refs, monkeypatch):
    monkeypatch.setattr(reading, "MIN_INPUTS_FOR_PROCESSES", 10)
    with reader_processes(Chunked(), 2) as processes:
        processes.submit(os._exit, 1).exception()  # breaks the pool, as a crashed decoder would
        names, items, _, failures = load_partition(Chunked(), refs, 2, processes)
    assert len(names) == 38 and failures == _expected_failures(refs)
    assert {pid for _, pid in items} == {os.getpid()}
