"""File > Check my code… in the window: the user's own code in the scratch engine's place
beside torch (stage list, card, network, sample panel, Compare), the file watched and checked
again at every save (written in place or renamed over), and their code's failures each one
message in the Your code panel while the window keeps answering. Values checked against torch
in float32 and float64."""

import os
import select

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from engine.check.rounding import EXACT, FLAGGED
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.session import SCRATCH, UNCHECKED, USER, Session
from gui.checking import code_panel
from gui.checking.code_dialog import CodeDialog
from tests.gui.windows import window_on
from tests.test_check_code import (
    BACK,
    IN_OUT,
    STAGED,
    VECTOR,
    VECTORISED,
    mistaken,
    student,
)

SAMPLES = 20
WAIT_MS = 60_000      # a loaded machine: Python, numpy and torch start in the check
FORGOTTEN = mistaken(VECTOR, BACK, "delta = params[\"w%d\" % l].T @ delta")
STAGED_FORGOTTEN = STAGED.replace("            delta = up * acts[l - 1] * (1 - acts[l - 1])",
                                  "            delta = up")


@pytest.fixture(autouse=True)
def no_dialogs(monkeypatch):
    """Their code's errors go to the panel: any message box is a failure of the test."""
    def shown(*args, **kwargs):
        raise AssertionError(f"a message box was shown: {args[1:3]}")
    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, shown)


def window(qtbot, dtype="float32"):
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype)
    return window_on(qtbot, Session(spec, init_params(spec, 3), default_set(spec, SAMPLES, 3)))


def check(qtbot, win, path, **options):
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        win.your_code.check_file(path, **options)


def torch_stage(session, key):
    x, y = session.sample
    return next(s.value for s in TorchNet(session.spec, session.params).stages(x, y)
                if s.key == key)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_your_gradients_take_the_scratch_engines_place(qtbot, tmp_path, dtype):
    win = window(qtbot, dtype)
    check(qtbot, win, student(tmp_path, VECTORISED, forward=False))
    session, card, rows = win.model.session, win.stage_card, win.stage_list
    assert win.your_code.panel.state == code_panel.AGREES
    assert "mine.py:gradients agrees with torch" in win.your_code.panel.verdict.text()
    assert win.your_code.dock.isVisible()
    session.go_to_sample(6)
    for row, pair in enumerate(session.pairs):
        texts = rows.row_texts(row)
        if pair.key.startswith(("dL/dw", "dL/db")):
            assert pair.source == USER and pair.grade == EXACT and texts[2] == "exact"
        else:
            assert pair.source == SCRATCH and texts[2] == "not checked" and texts[3] == "–"
    session.go_to_stage(next(i for i, p in enumerate(session.pairs) if p.key == "dL/dw2"))
    assert card._titles["scratch"].text() == "<b>Yours (mine.py:gradients)</b>"
    shown = card.values_of("scratch")
    expected = session.yours.checked.comparison.aligned.b["w2"][6]
    np.testing.assert_array_equal(shown, expected.astype(dtype))
    np.testing.assert_allclose(shown.astype(np.float64),
                               torch_stage(session, "dL/dw2").astype(np.float64),
                               rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-7)
    session.go_to_stage(0)
    assert card._titles["scratch"].text() == "<b>Scratch, not yours</b>"
    assert "your code gives no value for this stage" in card.summary.text()
    assert "– not checked" in win.stage_column.legend.text()
    assert win.sample_panel.ours_title.text() == "yours"
    assert "not in your code" in win.sample_panel.reading("y_hat", "scratch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_out_weights_show_in_the_windows_layout(qtbot, tmp_path, dtype):
    """A student's (in, out) file checked in a window whose network is (in, out): its weight
    gradients shown as it wrote them, equal to torch's in that layout, the edges coloured."""
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype, layout="in_out")
    win = window_on(qtbot, Session(spec, init_params(spec, 3), default_set(spec, SAMPLES, 3)))
    check(qtbot, win, student(tmp_path, IN_OUT, forward=False))
    session = win.model.session
    assert win.your_code.panel.state == code_panel.AGREES
    session.go_to_sample(2)
    index = next(i for i, p in enumerate(session.pairs) if p.key == "dL/dw1")
    session.go_to_stage(index)
    assert session.stage.source == USER and session.stage.grade == EXACT
    shown = win.stage_card.values_of("scratch")
    assert shown.shape == (2, 10)               # (in, out), as the student's W1
    np.testing.assert_allclose(shown.astype(np.float64),
                               torch_stage(session, "dL/dw1").astype(np.float64),
                               rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-7)


def test_a_mistake_in_stages_departs_where_the_code_goes_wrong(qtbot, tmp_path):
    win = window(qtbot)
    check(qtbot, win, student(tmp_path, STAGED_FORGOTTEN))
    session, panel = win.model.session, win.your_code.panel
    assert panel.state == code_panel.DISAGREES
    verdict = panel.verdict.text()
    assert "first at b2" in verdict and "forgotten_activation_derivative" in verdict
    assert "first stage that departs: dL/dz2" in verdict
    assert session.first_departure == "dL/dz2"
    row = win.stage_list.departure_row()
    assert session.pairs[row].key == "dL/dz2" and session.pairs[row].grade == FLAGGED
    assert all(p.source == USER for p in session.pairs[:row + 1])
    session.go_to_stage(row)
    assert win.stage_card.departure.text() == "✗ Your pass departs from torch here"
    assert "first stage that departs from torch: dL/dz2" in panel.text.toPlainText()
    # the network drawing shows the user's dL/dz2 on layer 2's units
    assert win.network_view._legend[0] == "∂L/∂z₂"
    dialog = win.your_code.compare()
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Compare: your code and torch"
    assert not dialog.comparison.report.agree
    assert dialog.comparison.report.first_disagreement == "b2"
    dialog.sampleActivated.emit(4)
    assert session.sample_index == 4


def rewrite(path, text, by_rename=False):
    """As an editor saves: in place, or a new file renamed over the old one."""
    if by_rename:
        new = path.with_suffix(".py.new")
        new.write_text(text)
        os.replace(new, path)
    else:
        path.write_text(text)


@pytest.mark.parametrize("by_rename", [False, True], ids=["in_place", "renamed_over"])
def test_each_save_checks_again_keeping_the_sample_and_the_stage(qtbot, tmp_path, by_rename):
    win = window(qtbot)
    path = student(tmp_path, VECTOR)
    check(qtbot, win, path)
    session = win.model.session
    session.go_to_sample(7)
    session.go_to_stage(12)
    assert win.your_code.panel.state == code_panel.AGREES
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        rewrite(path, path.read_text().replace(BACK, "delta = params[\"w%d\" % l].T @ delta"),
                by_rename)
    assert win.your_code.panel.state == code_panel.DISAGREES
    assert session.sample_index == 7 and session.stage_index == 12
    assert session.first_departure is not None
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        rewrite(path, (tmp_path / "mine.py").read_text().replace(
            "delta = params[\"w%d\" % l].T @ delta", BACK), by_rename)
    assert win.your_code.panel.state == code_panel.AGREES
    assert session.first_departure is None and session.sample_index == 7


@pytest.mark.parametrize("body, expected", [
    ("def gradients(params, x, y):\n    return params['nope']\n", "KeyError: 'nope'"),
    ("import os\ndef gradients(params, x, y):\n    os._exit(3)\n", "exit status 3"),
    ("import numpy as np\ndef gradients(params, x, y):\n    return {'w1': np.ones(10 * 2**30 "
     "// 8)}\n", "MemoryError"),
    ("import numpy as np\ndef gradients(params, x, y):\n    return {k: np.zeros((3, 3)) for k "
     "in params}\n", "shape"),
    ("import numpy as np\ndef gradients(params, x, y):\n    return {k: np.full(v.shape, "
     "np.nan) for k, v in params.items()}\n", "NaN"),
    ("def gradients(params, x, y)\n    return {}\n", "SyntaxError"),
], ids=["exception", "os_exit", "10_gb", "wrong_shapes", "nan", "syntax"])
def test_code_that_cannot_run_is_one_message_in_the_panel(qtbot, tmp_path, body, expected):
    win = window(qtbot)
    panel, session = win.your_code.panel, win.model.session
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        win.your_code.check_file(student(tmp_path, body, forward=False))
        qtbot.keyClick(win.stage_list, Qt.Key.Key_Down)    # the window answers meanwhile
        assert session.stage_index == 1 and "stage 2 of" in win.stage_card.title.text()
    assert panel.state == code_panel.FAILED
    assert expected in panel.text.toPlainText()
    assert panel.verdict.text().startswith("✗ mine.py:gradients could not be run")
    assert session.yours is None and session.yours_error
    assert all(p.grade == UNCHECKED for p in session.pairs)
    assert "could not be run" in win.stage_card.summary.text()
    assert not panel.compare_button.isEnabled()


def test_what_the_code_prints_is_shown_bounded(qtbot, tmp_path):
    win = window(qtbot)
    body = VECTOR.replace("    return grads", "    print('x' * 3_000_000)\n    return grads")
    check(qtbot, win, student(tmp_path, body))
    text = win.your_code.panel.text.toPlainText()
    assert win.your_code.panel.state == code_panel.AGREES
    assert text.startswith("printed by your code:") and "bytes printed in all" in text
    assert len(text) < 60_000


def test_the_window_answers_while_an_endless_loop_runs(qtbot, tmp_path):
    """The user's code loops; the window still steps through stages and paints, and the
    loop ends in a message at the time limit."""
    win = window(qtbot)
    path = student(tmp_path, "def gradients(params, x, y):\n    while True:\n        pass\n",
                   forward=False)
    session, card = win.model.session, win.stage_card
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        win.your_code.check_file(path, timeout=2.0)
        qtbot.waitUntil(lambda: win.your_code.running, timeout=WAIT_MS)
        for stage in range(1, 6):
            qtbot.keyClick(win.stage_list, Qt.Key.Key_Down)
            assert session.stage_index == stage
            assert win.your_code.running          # answered while the code still loops
        assert "stage 6 of" in card.title.text()
        assert win.your_code.panel.verdict.text().startswith("… running mine.py:gradients")
    assert "did not return within 2 s" in win.your_code.panel.text.toPlainText()
    assert win.your_code.panel.state == code_panel.FAILED


def test_new_parameters_or_network_check_again_and_stop_gives_the_place_back(qtbot, tmp_path):
    win = window(qtbot, "float64")
    check(qtbot, win, student(tmp_path, VECTOR))
    session = win.model.session
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        session.set_params({k: v * 0.5 for k, v in session.params.items()})
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        session.set_network(NetworkSpec((2, 5, 3, 1), ("sigmoid", "sigmoid", "identity"),
                                        dtype="float64"))
    assert win.your_code.panel.state == code_panel.AGREES
    theirs = session.yours.checked.comparison.aligned.b["w2"]
    assert theirs.shape == (SAMPLES, 3, 5)
    x, y = session.sample
    torch_w2 = next(s.value for s in TorchNet(session.spec, session.params).stages(x, y)
                    if s.key == "dL/dw2")
    np.testing.assert_allclose(theirs[0], torch_w2, rtol=1e-12, atol=1e-15)
    win.your_code.stop()
    assert not session.checking_yours
    assert win.your_code.panel.state == code_panel.IDLE
    assert win.stage_card._titles["scratch"].text() == "<b>Scratch (ours)</b>"
    assert not win.your_code.watcher.files() and not win.your_code.watcher.directories()
    assert all(p.grade != UNCHECKED for p in session.pairs)


def test_the_dialog_says_what_runs_and_refuses_what_cannot(qtbot, tmp_path):
    dialog = CodeDialog(None)
    qtbot.addWidget(dialog)
    intro = dialog.findChildren(type(dialog.problem))[0].text()
    assert "run the Python file you choose" in intro and "separate process" in intro
    assert "never run" in intro
    dialog.accept()
    assert dialog.problem.text() == "Choose the Python file to run."
    dialog.file.setText(str(tmp_path / "gone.py"))
    dialog.accept()
    assert "no such file" in dialog.problem.text()
    path = student(tmp_path, VECTOR)
    dialog.file.setText(str(path))
    dialog.function_edit.setText("not a name")
    dialog.accept()
    assert "not a function name" in dialog.problem.text()
    dialog.function_edit.setText("gradients")
    dialog.timeout_box.setValue(3)
    dialog.accept()
    assert dialog.result() == CodeDialog.DialogCode.Accepted
    assert (dialog.path, dialog.function, dialog.timeout) == (str(path), "gradients", 3.0)


def test_the_action_is_in_the_file_menu_and_the_toolbar(qtbot):
    win = window(qtbot)
    action = win.your_code.check_action
    assert action in win.file_actions.menu().actions() and action in win.toolbar.actions()
    assert action.shortcut().toString() == "Ctrl+K"
    assert win.your_code.stop_action in win.file_actions.menu().actions()
    assert not win.your_code.stop_action.isEnabled()


LOOP = "def gradients(params, x, y):\n    while True:\n        pass\n"


def started_loop(qtbot, tmp_path):
    """A window checking code that loops, with a time limit far away: the loop runs."""
    win = window(qtbot)
    path = student(tmp_path, LOOP, forward=False)
    win.your_code.check_file(path, timeout=600)
    qtbot.waitUntil(lambda: win.your_code._child is not None, timeout=WAIT_MS)
    return win, path


def test_a_save_ends_the_stale_run_at_once(qtbot, tmp_path):
    """The user fixes an endless loop and saves: the check of the fixed file does not wait for
    the loop's time limit."""
    win, path = started_loop(qtbot, tmp_path)
    looping = os.pidfd_open(win.your_code._child)
    try:
        with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
            rewrite(path, student(tmp_path, VECTOR, name="fixed.py").read_text())
        assert select.select([looping], [], [], 0)[0], "the looping run was left running"
    finally:
        os.close(looping)
    assert win.your_code.panel.state == code_panel.AGREES


@pytest.mark.parametrize("how", ["stop", "close"])
def test_stopping_or_closing_ends_the_users_code(qtbot, tmp_path, how):
    win, _ = started_loop(qtbot, tmp_path)
    looping = os.pidfd_open(win.your_code._child)
    try:
        if how == "stop":
            win.your_code.stop()
        else:
            win.close()
        # readable once the process has exited
        assert select.select([looping], [], [], 30)[0], "the user's code outlived the " + how
    finally:
        os.close(looping)
    qtbot.waitUntil(lambda: not win.your_code.running, timeout=WAIT_MS)


def test_the_dialog_opens_on_the_code_checked_last_even_in_a_new_window(qtbot, tmp_path):
    win = window(qtbot)
    path = student(tmp_path, VECTOR)
    check(qtbot, win, path, function="gradients", timeout=4.5)
    win.your_code.stop()
    other = window(qtbot)
    assert other.your_code.last() == (str(path.resolve()), "gradients", 4.5)


def test_the_action_asks_with_the_dialog_and_checks_what_it_was_given(qtbot, tmp_path,
                                                                      monkeypatch):
    win = window(qtbot)
    path = student(tmp_path, VECTOR)
    seen = []

    def answered(dialog):
        seen.append((dialog.path, dialog.function, dialog.timeout))
        dialog.file.setText(str(path))
        dialog.timeout_box.setValue(5)
        return CodeDialog.DialogCode.Accepted

    monkeypatch.setattr(CodeDialog, "exec", answered)
    with qtbot.waitSignal(win.your_code.checked, timeout=WAIT_MS):
        win.your_code.check_action.trigger()
    assert seen == [("", "gradients", 10.0)]
    assert win.your_code.panel.state == code_panel.AGREES and win.your_code.timeout == 5
    win.your_code.stop()
    monkeypatch.setattr(CodeDialog, "exec", lambda dialog: seen.append(
        (dialog.path, dialog.function, dialog.timeout)) or CodeDialog.DialogCode.Rejected)
    assert not win.your_code.ask()
    assert seen[-1] == (str(path.resolve()), "gradients", 5.0)
    assert not win.model.session.checking_yours
