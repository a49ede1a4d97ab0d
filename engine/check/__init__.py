"""Judging gradients: element-wise comparison, the alignment of two gradient files, rounding
bounds, the diagnosis of a disagreement, the catalogue of classic backprop mistakes (and the
scratch engine that makes them), the mistake finder that reproduces a file, and the report.

Imports: engine.net, engine.files and engine.errors.
"""
