"""The compare dialog: the report table, the heatmap's hot spot, and clicking a sample."""

import dataclasses
import pickle

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.export import SCRATCH_FILE, TORCH_FILE, export
from engine.files.datasets import default_set
from engine.files.gradfile import write_gradients
from engine.files.readers import read_gradients
from engine.session import Session
from gui.files.compare_dialog import CompareDialog
from gui.files.diff_heatmap import MAX_IMAGE_SIDE, pool_max
from gui.session_model import SessionModel

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]

TAMPERED_SAMPLE, TAMPERED_ELEMENT = 6, (3, 4)   # sample 7 as the files count, w2[3, 4]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Both engines' files of the default session's data, and a copy of ours with one element
    of one sample changed."""
    folder = tmp_path_factory.mktemp("run")
    session = Session()
    export(folder, session.spec, session.params, session.data)
    gs = read_gradients(folder / SCRATCH_FILE)
    gs.samples[TAMPERED_SAMPLE]["w2"][TAMPERED_ELEMENT] += np.float32(0.01)
    write_gradients(folder / "tampered.dat", gs)
    no_x = [dataclasses.replace(read_gradients(folder / name), x=None)
            for name in (TORCH_FILE, "tampered.dat")]
    write_gradients(folder / "torch_no_x.dat", no_x[0])
    write_gradients(folder / "tampered_no_x.dat", no_x[1])
    return folder


def open_dialog(qtbot, a, b, model=None) -> CompareDialog:
    dialog = CompareDialog(a, b, session_model=model)
    qtbot.addWidget(dialog)
    assert dialog.ok, dialog.error
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def verdicts(dialog: CompareDialog) -> dict[str, str]:
    table = dialog.param_table
    return {table.item(r, 0).text(): table.item(r, 6).text() for r in range(table.rowCount())}


def click_heatmap(qtbot, dialog: CompareDialog, sample: int, column: int) -> None:
    heatmap = dialog.heatmap
    point = heatmap.mapFromScene(heatmap.scene_point(sample, column))
    qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_agreeing_files(qtbot, files):
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / SCRATCH_FILE)
    assert "agree" in dialog.verdict.text() and "disagree" not in dialog.verdict.text()
    assert list(verdicts(dialog)) == ["b3", "w3", "b2", "w2", "b1", "w1"]
    assert set(verdicts(dialog).values()) == {"agree"}
    assert dialog.heat.shape == (100, 20 + 10 + 100 + 10 + 10 + 1)
    assert "agree in every one of the 100 samples" in dialog.details.toPlainText()


def test_a_tampered_element_is_marked_in_the_table_and_is_the_heatmaps_hot_spot(qtbot, files):
    model = SessionModel()
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / "tampered.dat", model)
    assert "disagree, first at w2" in dialog.verdict.text()
    assert verdicts(dialog) == {"b3": "agree", "w3": "agree", "b2": "agree",
                                "w2": "DISAGREE (first)", "b1": "agree", "w1": "agree"}
    row = list(verdicts(dialog)).index("w2")
    assert dialog.param_table.item(row, 5).text() == "7: [3, 4]"
    assert dialog.param_table.item(row, 0).background().color().red() > 200
    assert dialog.param_table.item(0, 0).background().style() == Qt.BrushStyle.NoBrush

    column = dialog.column("w2", TAMPERED_ELEMENT)
    assert dialog.element_at(column) == ("w2", TAMPERED_ELEMENT)
    shown = dialog.heatmap.image.image
    assert np.unravel_index(np.argmax(shown), shown.shape) == (TAMPERED_SAMPLE, column)
    others = np.delete(shown.ravel(), TAMPERED_SAMPLE * shown.shape[1] + column)
    assert shown[TAMPERED_SAMPLE, column] > others.max() + 2   # orders of magnitude hotter
    assert dialog.sample_table.item(TAMPERED_SAMPLE, 3).text() == "DISAGREE"

    heatmap = dialog.heatmap
    with qtbot.waitSignal(heatmap.cellHovered):
        qtbot.mouseMove(heatmap.viewport(),
                        heatmap.mapFromScene(heatmap.scene_point(TAMPERED_SAMPLE, column)))
    assert dialog.readout.text().startswith("sample 7, w2[3, 4]:")
    assert dialog.readout.text().endswith("disagrees")

    with qtbot.waitSignal(dialog.sampleActivated) as blocker:
        click_heatmap(qtbot, dialog, TAMPERED_SAMPLE, column)
    assert blocker.args == [TAMPERED_SAMPLE]
    assert model.session.sample_index == TAMPERED_SAMPLE
    assert "Sample 7 is now the explorer's current sample" in dialog.note.text()


def test_clicking_the_samples_table_moves_the_session(qtbot, files):
    model = SessionModel()
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / "tampered.dat", model)
    table = dialog.sample_table
    table.scrollToItem(table.item(41, 0))
    rect = table.visualItemRect(table.item(41, 0))
    with qtbot.waitSignal(dialog.sampleActivated) as blocker:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [41]
    assert model.session.sample_index == 41


def test_a_sample_of_other_data_leaves_the_session_where_it_is(qtbot, files):
    session = Session()
    session.set_data(default_set(session.spec, 100, seed=1))
    model = SessionModel(session)
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / "tampered.dat", model)
    assert "not the current data's" in dialog.membership.text()
    with qtbot.waitSignal(dialog.sampleActivated):
        click_heatmap(qtbot, dialog, TAMPERED_SAMPLE, 0)
    assert session.sample_index == 0
    assert "Sample 7 does not belong to the current data" in dialog.note.text()
    # once the session holds the files' data again, the same click moves it
    session.set_data(default_set(session.spec, 100, seed=0))
    assert "are the current data's" in dialog.membership.text()
    click_heatmap(qtbot, dialog, TAMPERED_SAMPLE, 0)
    assert session.sample_index == TAMPERED_SAMPLE


def test_files_without_x_match_by_count_and_say_so(qtbot, files):
    model = SessionModel()
    dialog = open_dialog(qtbot, files / "torch_no_x.dat", files / "tampered_no_x.dat", model)
    assert "matched by number only" in dialog.membership.text()
    dialog.activate_sample(TAMPERED_SAMPLE)
    assert model.session.sample_index == TAMPERED_SAMPLE
    assert "matched by number only" in dialog.note.text()
    # another number of samples cannot be the current data
    model.session.set_data(default_set(model.session.spec, 50))
    dialog.activate_sample(3)
    assert model.session.sample_index == 0
    assert "100 samples and the current data 50" in dialog.note.text()


@pytest.mark.parametrize(("content", "problem"), [
    (bytes(range(256)) * 4, "is binary data"),
    (pickle.dumps({"w1": [1.0]}), "pickle"),
])
def test_a_bad_file_is_a_message_not_a_dialog(qtbot, tmp_path, files, messages, content,
                                              problem):
    bad = tmp_path / "bad.dat"
    bad.write_bytes(content)
    dialog = CompareDialog(files / TORCH_FILE, bad)
    qtbot.addWidget(dialog)
    assert not dialog.ok
    assert len(messages) == 1
    title, text = messages[0]
    assert title == "Compare gradient files"
    assert text.startswith(str(bad)) and problem in text
    assert dialog.error == text


def test_a_huge_heatmap_is_pooled_and_keeps_its_hot_spot():
    image = np.zeros((10_000, 3), np.float32)
    image[7_777, 1] = 5.0
    pooled = pool_max(image, 0.0)
    assert pooled.shape[0] <= MAX_IMAGE_SIDE and pooled.max() == 5.0
    assert np.argmax(pooled[:, 1]) == 7_777 // 3
