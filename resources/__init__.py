"""Icons, style sheet and example files, loaded with importlib.resources."""
