"""A student's backpropagation, as `python app.py check resources/my_backprop.py` checks it.

The network is the default one: sigmoid hidden layers, a linear output, the loss
L = sum((y_hat - y)^2). `gradients` gets one sample and returns dL/dθ for every parameter,
each of the parameter's shape. Weights come as (out, in), as torch stores them: z = w·a + b.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gradients(params, x, y):
    layers = len(params) // 2
    a = [x]                                   # a[0] = x, a[k] = the output of layer k
    for layer in range(1, layers + 1):
        z = params[f"w{layer}"] @ a[-1] + params[f"b{layer}"]
        a.append(z if layer == layers else sigmoid(z))
    delta = 2 * (a[-1] - y)                   # dL/dz of the output layer (linear)
    grads = {}
    for layer in range(layers, 0, -1):
        grads[f"w{layer}"] = np.outer(delta, a[layer - 1])
        grads[f"b{layer}"] = delta
        if layer > 1:                     # back through w_layer, then sigmoid'
            delta = (params[f"w{layer}"].T @ delta) * a[layer - 1] * (1 - a[layer - 1])
    return grads
