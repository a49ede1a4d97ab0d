"""The network and its two engines: the spec (sizes, activations, loss, dtype, layout), the
activation and loss strategies, parameters, the scratch numpy engine, the torch reference, the
stage plan of one sample's pass, and finite-difference gradients.

Imports: numpy, torch (engine.net.reference only) and engine.errors; nothing else of engine/.
"""
