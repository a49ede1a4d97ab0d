"""Toolbar and menu icons (24×24 SVG), loaded with importlib.resources by gui/icons.py."""
