"""The explorer window. It only assembles: the network drawing on top, the stage list and the
stage card below it, the sample in a dock, the controls in a toolbar and menus, a status bar.
Each panel observes the session model by itself; the window keeps their layout between runs."""


from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QMessageBox, QSplitter, QWidget

from engine.net.spec import PRESETS
from gui import settings as stored
from gui.checking.your_code import YourCode
from gui.files.file_actions import FileActions
from gui.files.unsaved import CLOSING, NEW_NETWORK, OPENING, UnsavedGuard
from gui.help_pages import shortcuts_dialog, tour_dialog
from gui.icons import icon
from gui.mistake_actions import MistakeActions
from gui.network_dialog import choose_network
from gui.session_model import SessionModel
from gui.status_bar import StatusBar
from gui.stepping.network_view import NetworkView
from gui.stepping.sample_panel import SamplePanel
from gui.stepping.stage_card import StageCard
from gui.stepping.stage_list import StageColumn
from gui.training.docks import TrainingDocks
from gui.training.run_actions import RunActions

DEFAULT_SIZE = (1360, 860)


class MainWindow(QMainWindow):
    """The window on `model`'s session. With `settings`, its layout and the network are
    restored from them and saved to them on close; without, it starts from the defaults and
    stores nothing (as for a screenshot)."""

    def __init__(self, model: SessionModel | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model or SessionModel(parent=self)
        self._settings = settings
        self._help: QWidget | None = None   # the help window shown last
        self.network_view = NetworkView(self.model)
        self.stage_column = StageColumn(self.model)
        self.stage_list = self.stage_column.list
        self.stage_card = StageCard(self.model)
        self.sample_panel = SamplePanel(self.model)
        self.run_actions = RunActions(self.model, self)
        self.status = StatusBar(self.model, self)
        self.setStatusBar(self.status)
        self.stage_card.busy.connect(self.status.say_now)

        self.lower_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.lower_splitter.addWidget(self.stage_column)
        self.lower_splitter.addWidget(self.stage_card)
        self.lower_splitter.setStretchFactor(1, 1)
        self.lower_splitter.setSizes([290, 800])
        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.addWidget(self.network_view)
        self.main_splitter.addWidget(self.lower_splitter)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([300, 500])
        for splitter in (self.lower_splitter, self.main_splitter):
            splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.main_splitter)

        self.sample_dock = QDockWidget("Sample", self)
        self.sample_dock.setObjectName("sample_dock")
        self.sample_dock.setWidget(self.sample_panel)
        self.sample_dock.setToolTip("The current sample and both engines' prediction and loss")
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.sample_dock)
        self.training = TrainingDocks(self, self.model)
        self.tabifyDockWidget(self.sample_dock, self.training.panel_dock)
        self.sample_dock.raise_()
        self.resizeDocks([self.sample_dock], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.training.plots_dock], [260], Qt.Orientation.Vertical)
        self.training.panel.message.connect(self.status.say)

        self.network_action = QAction(icon("network"), "&Network and data…", self)
        self.network_action.setShortcut("Ctrl+N")
        self.network_action.setToolTip("Choose a preset or build a network, and its data "
                                       "(Ctrl+N)")
        self.network_action.triggered.connect(self.choose_network)
        self.file_actions = FileActions(self, self.model)
        self.unsaved = UnsavedGuard(self, self.model, self.training.panel,
                                    self.file_actions.save_model)
        self.file_actions.before_replacing = lambda: self.unsaved.confirm(OPENING)
        self.file_actions.modelSaved.connect(self.unsaved.mark_saved)
        self.file_actions.modelOpened.connect(self.unsaved.mark_saved)
        self.your_code = YourCode(self, self.model)
        self.your_code.message.connect(self.status.say)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.your_code.dock)
        self.tabifyDockWidget(self.sample_dock, self.your_code.dock)
        self.your_code.dock.hide()     # until there is code of the user's to check
        self.sample_dock.raise_()
        self.toolbar = self.run_actions.toolbar(self)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.network_action)
        self.toolbar.addAction(self.your_code.check_action)
        self.addToolBar(self.toolbar)
        self._build_menus()

        self.model.networkChanged.connect(self._network_changed)
        self._network_changed()
        self.resize(*DEFAULT_SIZE)
        if settings is not None:
            stored.restore_window(settings, self, self._splitters())
        # the minimum size settles before the native window exists; each later change is a
        # round trip to the platform (and a warning on the offscreen one)
        self.layout().activate()

    def _splitters(self) -> dict[str, QSplitter]:
        return {"main": self.main_splitter, "lower": self.lower_splitter}

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = self.file_actions.menu()
        recent = self.file_actions.recent_menu.menuAction()
        file_menu.insertActions(recent, [self.your_code.check_action,
                                         self.your_code.stop_action])
        file_menu.insertSeparator(recent)
        bar.addMenu(file_menu)
        run = self.run_actions.menu(self)
        run.addSeparator()
        run.addAction(self.training.train_action)
        network = QMenu("&Network", self)
        network.addAction(self.network_action)
        view = QMenu("&View", self)
        view.addAction(self.sample_dock.toggleViewAction())
        view.addAction(self.training.panel_dock.toggleViewAction())
        view.addAction(self.training.plots_dock.toggleViewAction())
        view.addAction(self.your_code.dock.toggleViewAction())
        view.addAction(self.toolbar.toggleViewAction())
        self.mistake_actions = MistakeActions(self, self.model)
        tools = self.mistake_actions.menu()
        help_menu = QMenu("&Help", self)
        tour = help_menu.addAction("&Quick tour", self.show_tour)
        tour.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
        tour.setToolTip("What to press first and what the colours mean (F1)")
        keys = help_menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        keys.setToolTip("Every key of the window, read from its actions")
        help_menu.addSeparator()
        help_menu.addAction("&About Backprop Explorer", self._about)
        for menu in (run, network, view, tools, help_menu):
            menu.setToolTipsVisible(True)
            bar.addMenu(menu)

    # actions
    def choose_network(self) -> bool:
        """The Network and data dialog; True when the user chose a new network. A preset just
        chosen, untouched, is nothing to save: the dialog makes it again from its seed."""
        chosen = choose_network(self, self.model, lambda: self.unsaved.confirm(NEW_NETWORK))
        spec = self.model.session.spec
        if chosen and any(spec == p.with_options(dtype=spec.dtype, layout=spec.layout)
                          for p in PRESETS.values()):
            self.unsaved.mark_saved()
        return chosen

    def show_tour(self) -> None:
        self._help = tour_dialog(self)
        self._help.show()

    def show_shortcuts(self) -> None:
        self._help = shortcuts_dialog(self)
        self._help.show()

    def _about(self) -> None:
        QMessageBox.about(self, "About Backprop Explorer",
                          "<b>Backprop Explorer</b><br>Step through the forward and backward "
                          "passes of a hand-written backpropagation, every number beside "
                          "PyTorch autograd's.")

    def _network_changed(self) -> None:
        self.setWindowTitle(f"Backprop Explorer — {self.model.session.spec.describe()}")
        if self._settings is not None:
            stored.remember_network(self._settings, self.model.session.spec)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.unsaved.confirm(CLOSING):
            event.ignore()
            return
        self.training.shutdown()
        self.your_code.shutdown()
        if self._settings is not None:
            stored.save_window(self._settings, self, self._splitters())
            stored.remember_network(self._settings, self.model.session.spec)
            self._settings.sync()
        super().closeEvent(event)
