"""Environment for the whole suite: Qt without a display, and reproducible hypothesis runs."""

import os

from hypothesis import settings

# before any test module imports Qt: the suite runs headless on CI machines and over ssh
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# no deadline: a shared machine's pauses are not our bugs; derandomize: a failure reproduces
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci")
