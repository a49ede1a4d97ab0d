"""The Qt adapter fires the signals a panel needs for each kind of change."""

from engine.net.spec import preset
from gui.session_model import SessionModel


def test_signals_cascade_from_the_widest_change(qtbot):
    model = SessionModel()
    seen = []
    for name in ("networkChanged", "dataChanged", "sampleChanged", "stageChanged"):
        getattr(model, name).connect(lambda name=name: seen.append(name))
    with qtbot.waitSignal(model.stageChanged):
        model.session.step()
    assert seen == ["stageChanged"]
    seen.clear()
    model.session.next_sample()
    assert seen == ["sampleChanged", "stageChanged"]
    seen.clear()
    with qtbot.waitSignal(model.changed) as blocker:
        model.session.set_network(preset("2-2-1-tanh-bce"))
    assert blocker.args == ["network"]
    assert seen == ["networkChanged", "dataChanged", "sampleChanged", "stageChanged"]
