"""Training in the window: the training panel and docks, the worker that runs the engine's
training run, and the live plots (curves, parameter heatmaps, the decision surface)."""
