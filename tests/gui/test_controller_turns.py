"""How the controller spreads what the child sent over turns of the event loop: a run's end
that came with records is told a turn later, so that the plots' records and the explorer's new
parameters never hold the window in one turn. A stand-in client gives the messages."""

import numpy as np
from PySide6.QtCore import QCoreApplication, QTimer

from engine.train.client import Finished, Paused, Records
from gui.training.controller import TrainController


class Client:
    """What TrainController asks of a TrainingClient, with the messages given."""

    alive = True
    unsent = 0

    def __init__(self, *batches):
        self.batches = list(batches)

    def receive(self):
        return self.batches.pop(0) if self.batches else []

    def close(self):
        pass


def records(step: int) -> Records:
    return Records([step], np.full((1, 1), float(step)))


def heard(controller: TrainController) -> list:
    """What the controller said, in order, and "turn" where a later turn began."""
    said: list = []

    def on_records(batch):
        said.append(("records", batch[0]))
        QTimer.singleShot(0, lambda: said.append("turn"))

    controller.records.connect(on_records)
    controller.stopped.connect(lambda outcome: said.append(("stopped", outcome)))
    return said


def running(controller: TrainController, client: Client) -> None:
    controller.client = client
    controller.running = True


def test_a_runs_end_with_records_is_told_a_turn_later(qtbot):
    controller = TrainController()
    said = heard(controller)
    running(controller, Client([records(1), records(2), Finished(2)]))
    controller._pump()
    assert said == [("records", 1), ("records", 2)]
    assert controller.running      # until the window hears the end
    qtbot.waitUntil(lambda: ("stopped", "done") in said)
    assert said == [("records", 1), ("records", 2), "turn", "turn", ("stopped", "done")]
    assert not controller.running


def test_a_runs_end_alone_is_told_at_once(qtbot):
    controller = TrainController()
    said = heard(controller)
    running(controller, Client([Paused(3, "interrupted")]))
    controller._pump()
    assert said == [("stopped", "interrupted")]


def test_what_came_after_the_end_keeps_its_order(qtbot):
    """A pause, then the next run's first records and its end, read in one go: each end in a
    turn of its own, nothing lost or reordered, even with new messages read meanwhile."""
    controller = TrainController()
    said = heard(controller)
    running(controller, Client([records(1), Paused(1, "steps"), records(2)],
                               [records(3), Finished(3)]))
    controller._pump()
    assert said == [("records", 1)]
    qtbot.waitUntil(lambda: ("stopped", "done") in said)
    assert [s for s in said if s != "turn"] == [
        ("records", 1), ("stopped", "steps"), ("records", 2), ("records", 3),
        ("stopped", "done")]


def test_shutting_down_drops_what_waits(qtbot):
    controller = TrainController()
    said = heard(controller)
    running(controller, Client([records(1), Finished(1)]))
    controller._pump()
    controller.shutdown()
    assert not controller.running
    assert not controller._next_turn.isActive()
    for _ in range(3):      # turns of the event loop: nothing more is said
        QCoreApplication.processEvents()
    assert ("stopped", "done") not in said
