"""The first second of the window, while torch is imported: the scratch pass is there at once and
can be stepped through, torch's column, the grades and the differences say "torch loading…",
and once torch is in every panel shows what a window that had torch from the start shows.
(That the window is built and painted before torch is imported at all is checked in a fresh
interpreter by tests/test_startup.py: this process has torch loaded already.)"""

import numpy as np
import pytest
from PySide6.QtCore import Qt

import gui.session_model as session_model
from engine.session import Session
from gui.launch import FirstPaint
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.stepping.array_table import as_matrix
from gui.stepping.pending import TORCH_LOADING, TORCH_UNAVAILABLE
from gui.stepping.stage_list import AGREEMENT, DIGITS


def make_window(qtbot, session: Session) -> MainWindow:
    w = MainWindow(SessionModel(session))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def loading(qtbot):
    """A window whose torch has not arrived yet; `model.load_torch()` brings it."""
    return make_window(qtbot, Session(torch_later=True))


def press(w: MainWindow, action: str, times: int = 1) -> None:
    """The Run menu's `action` (two windows are open: a shortcut would go to the active one)."""
    for _ in range(times):
        w.run_actions.actions[action].trigger()


def seen(w: MainWindow) -> dict[str, object]:
    """What a person can read in the window: every row of the stage list, the stage card's
    tables and texts, the sample dock, the status bar, the network's colours and tooltips."""
    session, card, view = w.model.session, w.stage_card, w.network_view
    columns = range(session.spec.n_layers + 2)
    return {
        "rows": [w.stage_list.row_texts(r) for r in range(w.stage_list.topLevelItemCount())],
        "red rows": w.stage_list.red_rows(),
        "tables": {c: card.values_of(c).tolist() for c in ("scratch", "torch", "difference")
                   if card.shows(c)},
        "card": (card.badge.text(), card.summary.text(), card.departure.text()),
        "sample": {(k, p): w.sample_panel.reading(k, p) for k in ("y_hat", "loss")
                   for p in ("scratch", "torch", "diff")},
        "status": tuple(label.text() for label in (w.status.activity, w.status.sample,
                                                   w.status.stage, w.status.agreement)),
        "nodes": [(view.node_fill(c, u).name(), view.node_departed(c, u), view.node_tooltip(c, u))
                  for c in columns for u in view.shown(c)],
        "edges": [view.edge_pen(layer, out, 0).color().name()
                  for layer in range(1, session.spec.n_layers + 1)
                  for out in view.shown(layer)],
    }


def test_while_torch_loads_the_scratch_pass_is_shown_and_torch_says_so(qtbot, loading):
    session, card = loading.model.session, loading.stage_card
    assert not session.torch_ready
    np.testing.assert_array_equal(card.values_of("scratch"), as_matrix(session.stage.scratch.value))
    assert card.says_torch_loading() and not card.shows("torch") and not card.shows("difference")
    assert card.torch_note()[0] == TORCH_LOADING
    assert TORCH_LOADING in card.badge.text() and TORCH_LOADING in card.summary.text()
    assert loading.status.agreement.text() == TORCH_LOADING
    assert loading.sample_panel.reading("loss", "torch") == TORCH_LOADING
    assert loading.sample_panel.reading("loss", "scratch") == str(session.value("loss"))
    rows = [loading.stage_list.row_texts(r) for r in range(len(session.pairs))]
    assert {(row[AGREEMENT], row[DIGITS]) for row in rows} == {("loading", "…")}
    assert "torch loading…" in loading.network_view.node_tooltip(1, 0)
    # stepping does not wait for torch: the scratch side of each stage is there
    for _ in range(4):
        qtbot.keyClick(loading, Qt.Key.Key_F10)
    qtbot.keyClick(loading, Qt.Key.Key_PageDown)
    assert (session.sample_index, session.stage.key) == (1, "z3")
    np.testing.assert_array_equal(card.values_of("scratch"), as_matrix(session.value("z3")))
    assert card.says_torch_loading()


def test_once_torch_is_in_the_window_is_as_if_torch_had_been_there(qtbot, loading):
    now = make_window(qtbot, Session())
    for w in (loading, now):   # steps taken while torch loads are kept when it arrives
        press(w, "step", 11)
        press(w, "next")
    assert seen(loading) != seen(now)
    with qtbot.waitSignal(loading.model.torchReady):
        loading.model.load_torch()
    assert loading.model.session.torch_ready and not loading.stage_card.says_torch_loading()
    assert seen(loading) == seen(now)
    for w in (loading, now):
        press(w, "step")
    assert seen(loading) == seen(now)


def test_a_mistake_injected_while_torch_loads_departs_once_torch_is_in(qtbot, loading):
    now = make_window(qtbot, Session())
    for w in (loading, now):
        w.model.session.set_mistake("sigmoid_derivative_of_activation")
        w.model.session.run_sample()
    assert loading.stage_list.red_rows() == [] and loading.stage_list.departure_row() is None
    with qtbot.waitSignal(loading.model.torchReady):
        loading.model.load_torch()
    assert loading.stage_list.red_rows() and seen(loading) == seen(now)


def test_the_first_paint_starts_torchs_import(qtbot):
    w = MainWindow(SessionModel(Session(torch_later=True)))
    qtbot.addWidget(w)
    FirstPaint(w)
    assert not w.model.session.torch_ready
    with qtbot.waitSignal(w.model.torchReady, timeout=60_000):
        w.show()
    assert not w.stage_card.says_torch_loading()
    assert w.status.agreement.text().startswith("✓ exact to float32")


def test_a_window_that_has_not_painted_gets_torch_all_the_same(qtbot):
    w = MainWindow(SessionModel(Session(torch_later=True)))
    qtbot.addWidget(w)
    FirstPaint(w, latest_ms=0)   # never shown: opened where it is not seen
    with qtbot.waitSignal(w.model.torchReady, timeout=60_000):
        pass
    assert w.model.session.torch_ready and not w.isVisible()


def test_a_torch_that_cannot_be_imported_is_a_message_and_the_window_goes_on(qtbot,
                                                                              monkeypatch):
    def broken() -> None:
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(session_model, "import_reference", broken)
    w = MainWindow(SessionModel(Session(torch_later=True)))
    qtbot.addWidget(w)
    FirstPaint(w)
    with qtbot.waitSignal(w.model.torchFailed, timeout=60_000) as failed:
        w.show()
    why = failed.args[0]
    assert "torch could not be loaded (ImportError: libtorch_cpu.so" in why
    assert w.status.activity.text() == why
    # torch's column says so for good, the reason in its tooltip; the scratch pass goes on
    qtbot.keyClick(w, Qt.Key.Key_F10)
    assert w.model.session.stage.key == "a1" and w.stage_card.says_torch_loading()
    card = w.stage_card
    assert TORCH_UNAVAILABLE in card.badge.text() and card.torch_note() == (TORCH_UNAVAILABLE, why)
    assert w.status.agreement.text() == TORCH_UNAVAILABLE
    assert w.sample_panel.reading("loss", "torch") == TORCH_UNAVAILABLE
    assert w.stage_list.row_texts(0)[AGREEMENT] == "no torch"
    assert TORCH_UNAVAILABLE in w.network_view.node_tooltip(1, 0)


def test_an_export_and_a_comparison_while_torch_loads_do_their_work(qtbot, loading, tmp_path):
    exported = loading.file_actions.export_gradients(str(tmp_path / "out"))
    assert exported is not None
    names = sorted(p.name for p in exported.files)
    assert "torch_autograd.dat" in names and "my_autograd.dat" in names
    assert not loading.model.session.torch_ready  # the export needed torch, not the session
    # comparing needs no torch either, and a sample chosen in the comparison is stepped to
    out = tmp_path / "out"
    dialog = loading.file_actions.compare_files(str(out / "torch_autograd.dat"),
                                                str(out / "my_autograd.dat"))
    qtbot.addWidget(dialog)
    assert dialog.comparison.report.agree
    dialog.activate_sample(6)
    assert loading.model.session.sample_index == 6 and loading.stage_card.says_torch_loading()
