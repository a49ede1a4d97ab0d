"""Files in the window: open, save, export and compare actions with their dialogs, the
difference heatmap, crash recovery and the unsaved-changes question."""
