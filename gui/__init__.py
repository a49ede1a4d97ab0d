"""Backprop Explorer window: widgets, plots and the worker thread. Asks engine/ for every number."""
