"""The autosave folder: a session comes back exactly, the mistake its scratch engine makes
included, a write cut short leaves the previous autosave whole, a live session's folder is
never taken for a crashed one's, and a folder that was tampered with is refused with a message,
running nothing; a garbled mistake alone is left out with a note."""

import dataclasses
import json
import pickle
import threading

import numpy as np
import pytest

import engine.autosave as autosave
from engine.autosave import (
    AutosaveError,
    RunSnapshot,
    SessionFolder,
    Snapshot,
    Writer,
    orphans,
    read_autosave,
)
from engine.check.mistakes import inject
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from engine.train.lockstep import Lockstep, TrainConfig

SPEC = preset(DEFAULT_PRESET)


def trained_session() -> Session:
    """A session whose engines have parted after a few SGD steps, at sample 3, stage 5."""
    data = default_set(SPEC, 12, seed=4)
    lockstep = Lockstep(SPEC, init_params(SPEC, 2), data)
    for row in range(7):
        lockstep.step(np.array([row]), 0.5)
    session = Session(SPEC, data=data, seed=2)
    session.set_params(*lockstep.params())
    session.go_to_sample(3)
    session.go_to_stage(5)
    return session


def a_run() -> RunSnapshot:
    steps = np.arange(1.0, 8.0)
    return RunSnapshot(TrainConfig(lr=0.5, epochs=3, batch_size=2, shuffle=True, seed=9), 7, 18,
                       {"loss/scratch": (steps, np.linspace(1, 0.1, 7)),
                        "diff/w1": (steps, np.array([0, 1e-9, np.nan, 2e-9, 0, 0, np.inf]))})


def assert_same(a: Snapshot, b: Snapshot) -> None:
    assert (a.spec, a.seed, a.sample_index, a.stage_key) == (b.spec, b.seed, b.sample_index,
                                                               b.stage_key)
    for mine, theirs in ((a.params, b.params), (a.torch_params, b.torch_params)):
        assert mine.keys() == theirs.keys()
        for name in mine:
            assert mine[name].dtype == theirs[name].dtype
            np.testing.assert_array_equal(mine[name], theirs[name], strict=True)
    np.testing.assert_array_equal(a.data.x, b.data.x, strict=True)
    np.testing.assert_array_equal(a.data.y, b.data.y, strict=True)
    assert a.data.name == b.data.name
    assert a.saved_at == b.saved_at


def test_a_session_and_its_run_come_back_exactly(tmp_path):
    session = trained_session()
    snapshot = Snapshot.of(session, a_run())
    assert not all(np.array_equal(snapshot.params[k], snapshot.torch_params[k])
                   for k in snapshot.params)  # both engines' own parameters are kept
    folder = SessionFolder.create(tmp_path)
    folder.write(snapshot)
    back = read_autosave(folder.path)
    assert_same(back, snapshot)
    assert back.stage_key == session.pairs[5].key
    assert back.run.config == snapshot.run.config
    assert (back.run.step, back.run.total) == (7, 18)
    for name, (steps, values) in snapshot.run.history.items():
        np.testing.assert_array_equal(back.run.history[name][0], steps)
        np.testing.assert_array_equal(back.run.history[name][1], values)  # NaN, inf, 0 kept


def test_the_data_is_written_once_and_stale_files_go(tmp_path):
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    for stage in range(3):
        session.go_to_stage(stage)
        folder.write(Snapshot.of(session))
    names = sorted(p.name for p in folder.path.iterdir())
    assert names == ["arrays-3.npz", "data-1.csv", "lock", "session.json"]
    session.set_data(default_set(SPEC, 5, seed=8))
    folder.write(Snapshot.of(session))
    assert sorted(p.name for p in folder.path.iterdir()) == [
        "arrays-4.npz", "data-4.csv", "lock", "session.json"]
    assert len(read_autosave(folder.path).data) == 5


def test_a_write_cut_short_leaves_the_previous_autosave_whole(tmp_path, monkeypatch):
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    first = Snapshot.of(session)
    folder.write(first)
    session.set_network(preset("2-2-1-tanh-bce"))   # new shapes, new data
    real = autosave.atomic_write_text

    def killed_before_the_json(path, text):
        if path.name == autosave.SESSION_FILE:
            raise OSError("killed")
        real(path, text)

    monkeypatch.setattr(autosave, "atomic_write_text", killed_before_the_json)
    with pytest.raises(OSError):
        folder.write(Snapshot.of(session))
    assert_same(read_autosave(folder.path), first)


def test_only_a_folder_nobody_holds_is_an_orphan(tmp_path):
    live = SessionFolder.create(tmp_path)
    live.write(Snapshot.of(Session()))
    assert orphans(tmp_path) == []          # its lock is held: a window still uses it
    crashed = tmp_path / "20240101-000000-1"
    crashed.mkdir()
    (crashed / autosave.LOCK_FILE).touch()  # a lock file nobody holds: its process is gone
    never_written = tmp_path / "20240101-000000-2"
    never_written.mkdir()
    assert set(orphans(tmp_path)) == {crashed, never_written}
    with pytest.raises(AutosaveError, match="20240101-000000-2"):
        read_autosave(never_written)
    live.remove()
    assert not live.path.exists()
    assert orphans(tmp_path / "missing") == []


def test_windows_of_one_process_started_in_one_second_get_folders_of_their_own(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(autosave.time, "strftime", lambda fmt: "20240101-000000")
    first, second = SessionFolder.create(tmp_path), SessionFolder.create(tmp_path)
    assert first.path != second.path and first.path.parent == second.path.parent == tmp_path
    first.write(Snapshot.of(Session()))
    second.write(Snapshot.of(Session(preset("2-2-1-tanh-bce"))))
    assert read_autosave(first.path).spec == preset(DEFAULT_PRESET)
    first.remove()
    second.remove()


def written(tmp_path) -> tuple[SessionFolder, dict]:
    folder = SessionFolder.create(tmp_path)
    folder.write(Snapshot.of(trained_session(), a_run()))
    return folder, json.loads((folder.path / autosave.SESSION_FILE).read_text())


def rewrite(folder: SessionFolder, doc: dict) -> None:
    (folder.path / autosave.SESSION_FILE).write_text(json.dumps(doc))


@pytest.mark.parametrize("change", [
    lambda doc: doc["data"].update(file="../../outside.csv"),
    lambda doc: doc.update(arrays="/etc/passwd"),
    lambda doc: doc.update(version=99),
    lambda doc: doc["network"].update(sizes=[2, 3, 1]),
    lambda doc: doc["training"]["config"].update(lr=-1),
    lambda doc: doc.pop("seed"),
    lambda doc: doc.update(training={"config": {}, "step": "x"}),
])
def test_a_session_file_that_does_not_fit_is_refused(tmp_path, change):
    folder, doc = written(tmp_path)
    change(doc)
    rewrite(folder, doc)
    with pytest.raises(AutosaveError) as error:
        read_autosave(folder.path)
    assert str(error.value).startswith(str(folder.path)) and "\n" not in str(error.value)


class Boom:
    def __reduce__(self):
        return (exec, ("open(__file__ + '.ran', 'w').close()",))


@pytest.mark.parametrize("damage", ["pickle", "truncate", "garbage json", "pickled json"])
def test_damaged_or_hostile_files_are_refused_and_run_nothing(tmp_path, damage):
    folder, doc = written(tmp_path)
    arrays = folder.path / doc["arrays"]
    if damage == "pickle":
        np.savez(arrays, **{"scratch.w1": np.array([Boom()], dtype=object)})
    elif damage == "truncate":
        arrays.write_bytes(arrays.read_bytes()[:300])
    elif damage == "garbage json":
        (folder.path / autosave.SESSION_FILE).write_bytes(b"\x00{" * 50)
    else:
        (folder.path / autosave.SESSION_FILE).write_bytes(pickle.dumps(Boom()))
    with pytest.raises(AutosaveError):
        read_autosave(folder.path)
    assert not list(tmp_path.rglob("*.ran"))


def test_a_snapshot_during_a_run_keeps_the_parameters_it_was_given(tmp_path):
    session = trained_session()
    worker_params = {k: v + 1 for k, v in session.params.items()}
    snapshot = dataclasses.replace(Snapshot.of(session, a_run()), params=worker_params)
    folder = SessionFolder.create(tmp_path)
    folder.write(snapshot)
    back = read_autosave(folder.path)
    for name, value in worker_params.items():
        np.testing.assert_array_equal(back.params[name], value, strict=True)


def test_the_injected_mistake_comes_back(tmp_path):
    session = trained_session()
    session.set_mistake("untransposed_weight@2")
    folder = SessionFolder.create(tmp_path)
    folder.write(Snapshot.of(session))
    back = read_autosave(folder.path)
    assert (back.mistake, back.mistake_note) == ("untransposed_weight@2", "")
    assert inject(back.spec, back.mistake).layers == session.mistake.layers == (2,)


def test_an_autosave_from_before_mistakes_were_recorded_comes_back_without_one(tmp_path):
    folder, doc = written(tmp_path)
    assert doc["mistake"] is None
    del doc["mistake"]
    rewrite(folder, doc)
    back = read_autosave(folder.path)
    assert (back.mistake, back.mistake_note) == (None, "")
    assert back.run is not None and back.sample_index == 3


@pytest.mark.parametrize(("entry", "why"), [
    ("no_such_mistake", "unknown mistake 'no_such_mistake'; valid: "),
    ("untransposed_weight@7", "untransposed_weight@7: in 2-10-10-1 "),
    ("untransposed_weight@²", "untransposed_weight@²: in 2-10-10-1 "),
    ("x" * 5000, '"xxxxxxxx'),
    (42, "gives 42, which is not a mistake's name"),
    ({"__reduce__": "exec"}, "gives {\"__reduce__\": \"exec\"}, which is not"),
    (["untransposed_weight"], "gives [\"untransposed_weight\"], which"),
])
def test_a_garbled_mistake_is_told_and_the_rest_comes_back(tmp_path, entry, why):
    snapshot = Snapshot.of(trained_session(), a_run())
    folder = SessionFolder.create(tmp_path)
    folder.write(snapshot)
    doc = json.loads((folder.path / autosave.SESSION_FILE).read_text())
    doc["mistake"] = entry
    rewrite(folder, doc)
    back = read_autosave(folder.path)
    assert back.mistake is None
    note = back.mistake_note
    assert note.startswith("the injected mistake was not restored: ") and why in note
    assert "\n" not in note and len(note) < 400
    assert_same(back, snapshot)
    assert back.run is not None and back.run.step == 7


def test_the_writer_writes_the_newest_snapshot_on_a_thread_of_its_own(tmp_path, monkeypatch):
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    writer = Writer(folder)
    threads = []
    real = folder.write
    monkeypatch.setattr(folder, "write",
                        lambda snapshot: (threads.append(threading.current_thread()),
                                          real(snapshot)))
    for stage in range(4):
        session.go_to_stage(stage)
        writer.put(Snapshot.of(session))
    writer.wait()
    assert 1 <= len(threads) <= 4 and threading.current_thread() not in threads
    assert read_autosave(folder.path).stage_key == session.pairs[3].key   # the newest
    session.go_to_stage(5)
    writer.write_now(Snapshot.of(session))                # and on the caller's thread
    assert threads[-1] is threading.current_thread()
    assert read_autosave(folder.path).stage_key == session.pairs[5].key
    assert writer.error is None
    writer.close()
    assert not writer.running


def test_the_writer_keeps_one_thread_for_every_put_until_closed(tmp_path, monkeypatch):
    """Started at each put, the caller waited for the thread to start, and then for the GIL
    while it wrote: one thread takes every snapshot, and ends when closed or idle."""
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    writer = Writer(folder)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start",
                        lambda thread: (started.append(thread.name), real_start(thread)))
    for stage in range(5):
        session.go_to_stage(stage)
        writer.put(Snapshot.of(session))
        writer.wait()
        assert read_autosave(folder.path).stage_key == session.pairs[stage].key
    assert started == ["autosave"] and writer.running
    session.go_to_stage(6)
    writer.put(Snapshot.of(session))
    writer.close()                                        # what was put is written first
    assert not writer.running
    assert read_autosave(folder.path).stage_key == session.pairs[6].key
    writer.put(Snapshot.of(session))                      # closed: nothing more
    assert not writer.running and started == ["autosave"]


def test_an_idle_writer_ends_its_thread_and_starts_one_again(tmp_path, monkeypatch):
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    writer = Writer(folder)
    monkeypatch.setattr(Writer, "IDLE", 0.05)
    writer.put(Snapshot.of(session))
    thread = writer._thread
    thread.join(timeout=10)                               # it ends once idle
    assert not thread.is_alive() and not writer.running
    session.go_to_stage(4)
    writer.put(Snapshot.of(session))
    writer.wait()
    assert read_autosave(folder.path).stage_key == session.pairs[4].key
    writer.close()


def test_a_disk_that_refuses_stops_the_writer_with_its_error(tmp_path, monkeypatch):
    session = trained_session()
    folder = SessionFolder.create(tmp_path)
    writer = Writer(folder)
    monkeypatch.setattr(autosave, "atomic_write_bytes",
                        lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    writer.put(Snapshot.of(session))
    writer.wait()
    assert isinstance(writer.error, OSError) and "No space left" in str(writer.error)
    writer.put(Snapshot.of(session))                      # nothing more is tried
    writer.wait()
    assert not (folder.path / autosave.SESSION_FILE).exists()
    assert not writer.running
