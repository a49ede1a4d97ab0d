"""Stepping through one sample: the stage list, the stage card with its value tables and
formula, the network picture and the sample panel."""
