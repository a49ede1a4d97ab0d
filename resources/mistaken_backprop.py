"""A student's backpropagation with one classic mistake, to see what the explorer makes of it:
`python app.py check resources/mistaken_backprop.py`, or in the window
`python app.py --check resources/mistaken_backprop.py`.

Going back through a sigmoid layer, it forgets the sigmoid's derivative a·(1 - a): the output
layer's gradients are right, every one below them is wrong. It defines stages() too, so the
explorer compares every stage and names the first that departs (dL/dz2).
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backprop(params, x, y):
    """The gradients, and every stage on the way, under the names students use."""
    layers = len(params) // 2
    a, out = [x], {}
    for layer in range(1, layers + 1):
        z = params[f"w{layer}"] @ a[-1] + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
        out[f"z{layer}"], out[f"a{layer}"] = z, a[-1]
    out["loss"] = np.sum((a[-1] - y) ** 2)
    delta = 2 * (a[-1] - y)
    out["dy_hat"] = delta
    grads = {}
    for layer in range(layers, 0, -1):
        out[f"delta{layer}"] = delta
        grads[f"w{layer}"] = out[f"dW{layer}"] = np.outer(delta, a[layer - 1])
        grads[f"b{layer}"] = out[f"db{layer}"] = delta
        if layer > 1:
            out[f"da{layer - 1}"] = params[f"w{layer}"].T @ delta
            delta = out[f"da{layer - 1}"]          # the mistake: no * a * (1 - a)
    return grads, out


def gradients(params, x, y):
    return backprop(params, x, y)[0]


def stages(params, x, y):
    return backprop(params, x, y)[1]
