"""What students call the intermediate values of their backpropagation, read as the stage keys
both engines use (engine/net/stages.py): z1, a1, ..., y_hat, loss, dL/dy_hat, dL/dz1, dL/dw1,
dL/db1, dL/da1, ...

    stage_key("delta2", n_layers=3)    # "dL/dz2"
    stage_key("y3", n_layers=3)        # "y_hat": the seeds write y_l for a layer's output

Accepted, case aside: z2, a2, h2, y2 (y_L is the output), y_hat/yhat/output/pred, L/loss;
dz2, delta2, d2, dL/dz2, dLdz2, grad_z2; dw2, dW2, dL/dw2, grad_w2; db2, dL/db2; da2, dy2,
dL/da2, dL/dy2 (the gradient at a layer's output); dy_hat, dL/dy_hat, dL/dyhat, dout.
A separator may sit before the number (z_2, delta[2]). Anything else is None.
"""

import re

_NUMBER = r"[\s_\[(]*(\d+)[\])]*"
_PATTERNS = [
    (re.compile(r"(?:z|pre(?:_?activation)?)" + _NUMBER), "z"),
    (re.compile(r"(?:a|h|y|act(?:ivation)?|out)" + _NUMBER), "a"),
    (re.compile(r"(?:(?:dl/?d|grad_?|d_?)z|delta|d)" + _NUMBER), "dz"),
    (re.compile(r"(?:dl/?d|grad_?|d_?)w" + _NUMBER), "dw"),
    (re.compile(r"(?:dl/?d|grad_?|d_?)b" + _NUMBER), "db"),
    (re.compile(r"(?:dl/?d|grad_?|d_?)(?:a|y|h)" + _NUMBER), "da"),
]
_OUTPUT = {"y_hat", "yhat", "output", "pred", "prediction", "y_pred", "ypred"}
_LOSS = {"l", "loss"}
_OUTPUT_GRAD = {"dy_hat", "dl/dy_hat", "dl/dyhat", "dldy_hat", "dldyhat", "dyhat", "dout",
                "d_out", "grad_y_hat", "grad_output"}


def stage_key(name: str, n_layers: int) -> str | None:
    """The stage key `name` means in a network of `n_layers` layers, or None."""
    text = name.strip().lower()
    if text in _LOSS:
        return "loss"
    if text in _OUTPUT:
        return "y_hat"
    if text in _OUTPUT_GRAD:
        return "dL/dy_hat"
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        layer = int(next(g for g in match.groups() if g is not None))
        if not 1 <= layer <= n_layers:
            return None
        if kind == "z":
            return f"z{layer}"
        if kind == "a":
            return "y_hat" if layer == n_layers else f"a{layer}"
        if kind == "da":
            return "dL/dy_hat" if layer == n_layers else f"dL/da{layer}"
        return f"dL/{kind}{layer}"
    return None
