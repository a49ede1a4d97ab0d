"""A student's backpropagation written for the whole batch, as
`python app.py check resources/my_backprop_batch.py` checks it: one call with every sample.

The network is the default one: sigmoid hidden layers, a linear output, the loss
L = sum((y_hat - y)^2) of each sample. X is (N, n0) and Y (N, nL), a sample a row; weights come
as (out, in), as torch stores them, so a layer is Z = A·wᵀ + b. The gradients are returned
per sample, each with a leading axis of the N samples: dL/dw_l as (N, out, in), dL/db_l as
(N, out). A sum or a mean over the batch would lose the samples, and is called one sample at a
time instead (docs/checking.md).
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gradients(params, X, Y):
    layers = len(params) // 2
    A = [X]                                   # A[k]: the output of layer k, (N, n_k)
    for layer in range(1, layers + 1):
        Z = A[-1] @ params[f"w{layer}"].T + params[f"b{layer}"]
        A.append(Z if layer == layers else sigmoid(Z))
    D = 2 * (A[-1] - Y)                       # dL/dz of the output layer, a row a sample
    grads = {}
    for layer in range(layers, 0, -1):
        grads[f"w{layer}"] = np.einsum("no,ni->noi", D, A[layer - 1])   # an outer product each
        grads[f"b{layer}"] = D
        if layer > 1:                     # back through w_layer, then sigmoid'
            D = (D @ params[f"w{layer}"]) * A[layer - 1] * (1 - A[layer - 1])
    return grads
