"""The compare dialog: the report table, the heatmap's hot spot, and clicking a sample; what a
student reads: every parameter named on the heatmap, one ring per disagreeing parameter, no
formula as markup, and the diagnosis whole at the size the dialog opens at on a laptop."""

import dataclasses
import pickle

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QWidget

from engine.check.notation import raw_markup
from engine.export import SCRATCH_FILE, TORCH_FILE, export
from engine.files.datasets import default_set
from engine.files.gradfile import write_gradients
from engine.files.readers import read_gradients
from engine.session import Session
from gui.files.compare_dialog import CompareDialog, default_size
from gui.files.diff_heatmap import MAX_IMAGE_SIDE, pool_max
from gui.session_model import SessionModel

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]

TAMPERED_SAMPLE, TAMPERED_ELEMENT = 6, (3, 4)   # sample 7 as the files count, w2[3, 4]
LAPTOP = QSize(1366, 768)
# a note as versions before issue 14 wrote it into a file
OLD_NOTE = "injected mistake: δ_l = w_{l+1}ᵀ·δ_{l+1} in the hidden layers, f'(z_l) left out"


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


@pytest.fixture(scope="module")
def mistaken(tmp_path_factory):
    """An export whose scratch file holds a mistake in layers 1 and 2, and the same file with a
    note in the markup older versions wrote."""
    folder = tmp_path_factory.mktemp("mistaken")
    session = Session()
    export(folder, session.spec, session.params, session.data,
           mistake="forgotten_activation_derivative")
    gs = read_gradients(folder / SCRATCH_FILE)
    write_gradients(folder / "old_note.dat", dataclasses.replace(gs, notes=[OLD_NOTE]))
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
    assert "agree in every one of the 100 samples" in dialog.details.text()
    assert dialog.worst_cells() == [] and len(dialog.heatmap.rings[0].data) == 0


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
    shown = np.concatenate([image.image for image in dialog.heatmap.images], axis=1)
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
    # the hovered cell is framed, and only it
    frame = heatmap.hover.rect()
    centre = heatmap.view.mapSceneToView(heatmap.scene_point(TAMPERED_SAMPLE, column))
    assert heatmap.hover.isVisible() and frame.contains(centre)
    assert frame.height() == 1 and frame.width() < 2

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


def ring_cells(dialog: CompareDialog) -> list[tuple[int, int]]:
    """The (sample from 0, column) of every ring on the heatmap."""
    heatmap = dialog.heatmap
    rings = heatmap.rings[0].data
    cells = [heatmap.cell_at(heatmap.view.mapViewToScene(QPointF(x, y)))
             for x, y in zip(rings["x"], rings["y"], strict=True)]
    assert all(len(ring.data) == len(rings) for ring in heatmap.rings)
    return cells


def test_one_ring_per_disagreeing_parameter_on_its_worst_cell(qtbot, files, mistaken):
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / "tampered.dat")
    assert ring_cells(dialog) == [(TAMPERED_SAMPLE, dialog.column("w2", TAMPERED_ELEMENT))]

    dialog = open_dialog(qtbot, mistaken / TORCH_FILE, mistaken / SCRATCH_FILE)
    bad = [name for name, p in dialog.comparison.report.params.items() if not p.agree]
    assert sorted(bad) == ["b1", "b2", "w1", "w2"]
    cells = ring_cells(dialog)
    assert sorted(dialog.element_at(column)[0] for _, column in cells) == sorted(bad)
    for sample, column in cells:
        name = dialog.element_at(column)[0]
        i = dialog.names.index(name)
        block = dialog.excess[:, dialog.offsets[i]:dialog.offsets[i + 1]]
        assert dialog.excess[sample, column] == block.max()


def test_every_parameter_is_named_on_the_axis_with_room_for_its_name(qtbot, files):
    dialog = open_dialog(qtbot, files / TORCH_FILE, files / "tampered.dat")
    dialog.resize(default_size(LAPTOP))
    heatmap = dialog.heatmap
    qtbot.waitUntil(lambda: heatmap.width() > 500)
    axis = heatmap.getPlotItem().getAxis("bottom")
    assert [name for _, name in axis._tickLevels[0]] == dialog.names
    metrics = heatmap.fontMetrics()       # the axis draws its ticks in the widget's font
    for i, name in enumerate(dialog.names):
        left, right = (heatmap.view.mapViewToScene(QPointF(x, 1)).x()
                       for x in heatmap.edges[i:i + 2])
        # b3 is one element of 151, and still as wide as its name with room to spare
        assert right - left > 2 * metrics.horizontalAdvance(name), name
    # every cell of a widened block is still found where it is drawn
    for column in (dialog.column("b3", (0,)), dialog.column("b1", (9,)),
                   dialog.column("w2", (9, 9))):
        assert heatmap.cell_at(heatmap.scene_point(3, column)) == (3, column)


def test_no_text_of_the_dialog_is_markup(qtbot, files, mistaken):
    pairs = ((mistaken / TORCH_FILE, mistaken / SCRATCH_FILE),
             (mistaken / TORCH_FILE, mistaken / "old_note.dat"),
             (files / TORCH_FILE, files / "tampered.dat"))
    for k, (a, b) in enumerate(pairs):
        dialog = open_dialog(qtbot, a, b, SessionModel())
        dialog.activate_sample(3)
        heatmap = dialog.heatmap
        with qtbot.waitSignal(heatmap.cellHovered):
            # another cell each time: the mouse does not move onto the cell it is over
            point = heatmap.mapFromScene(heatmap.scene_point(3 + 10 * k, 5 + 20 * k))
            qtbot.mouseMove(heatmap.viewport(), point)
        texts = dialog.user_texts()
        assert dialog.readout.text() in texts and dialog.note.text() in texts
        for text in texts:
            assert raw_markup(text) == [], text
    # the formulas are rich text: subscripts as <sub>, the transpose a superscript T
    dialog = open_dialog(qtbot, mistaken / TORCH_FILE, mistaken / "old_note.dat")
    assert "<sub>l+1</sub>" in dialog.notes.text() and "<sup>" in dialog.notes.text()
    assert any("δl+1" in text for text in dialog.user_texts())
    dialog = open_dialog(qtbot, mistaken / TORCH_FILE, mistaken / SCRATCH_FILE)
    assert "<i>δ</i><sub>2</sub>" in dialog.details.text()


def inside(widget: QWidget, dialog: CompareDialog) -> bool:
    rect = QRect(widget.mapTo(dialog, QPoint(0, 0)), widget.size())
    return dialog.rect().contains(rect)


def test_at_a_laptops_size_nothing_is_clipped_and_the_diagnosis_is_whole(qtbot, mistaken):
    size = default_size(LAPTOP)
    assert size.width() <= LAPTOP.width() - 40 and size.height() <= LAPTOP.height() - 70
    dialog = open_dialog(qtbot, mistaken / TORCH_FILE, mistaken / "old_note.dat",
                         SessionModel())
    dialog.resize(size)
    qtbot.waitUntil(lambda: dialog.size() == size)
    assert dialog.minimumSizeHint().boundedTo(size) == dialog.minimumSizeHint()
    for label in (dialog.details, dialog.notes, dialog.verdict, dialog.readout,
                  dialog.membership):
        assert label.isVisible() and inside(label, dialog)
        assert label.height() >= label.heightForWidth(label.width()), label.text()
    assert len(dialog.comparison.report.diagnosis) >= 3     # a diagnosis worth reading
    assert dialog.heatmap.height() >= 180 and inside(dialog.heatmap, dialog)
    table = dialog.param_table
    assert table.verticalScrollBar().maximum() == 0          # every parameter's row shows
    for table in (dialog.param_table, dialog.sample_table):
        assert table.horizontalScrollBar().maximum() == 0, table
        assert inside(table, dialog)
    assert inside(dialog.close_button, dialog)
    # no view scrolls but the two tables and the heatmap (the diagnosis is no scrolled view)
    tables = (dialog.param_table, dialog.sample_table)
    areas = [area for area in dialog.findChildren(QAbstractScrollArea)
             if not any(table.isAncestorOf(area) and area is not table for table in tables)]
    assert set(areas) == {*tables, dialog.heatmap}
