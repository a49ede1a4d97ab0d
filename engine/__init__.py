"""Backprop Explorer engine: specs, the scratch engine, the torch reference, comparison and
data. Never imports Qt."""
