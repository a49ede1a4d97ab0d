"""Backprop Explorer's engine: everything the app computes, in numpy and torch, never Qt.

    net/     the network and its two engines (scratch numpy, torch reference), stages
    files/   gradient sets, our .dat format, other people's gradient files, model and data files
    check/   comparison, rounding, diagnosis, the mistake catalogue, the mistake finder, reports
    train/   the lockstep SGD run of both engines, its timeline and history, torch's helper
    session.py, autosave.py   the Qt-free model the window observes, and its crash-safe copy
    export.py, budget.py, errors.py   shared by the command line and the window

Imports run one way: net <- files <- check <- train <- the modules at this level; errors.py is
imported by all (tests/test_boundary.py enforces both the order and the absence of Qt).
"""
