"""Training both engines in lockstep: the batches and SGD steps of a run, the training run
with its breakpoints, the timeline that replays any step exactly, the run's history (records,
epoch means, divergence), and the helper process that runs torch's half.

Imports: engine.net, engine.files, engine.check (the mistake a run makes) and engine.errors.
"""
