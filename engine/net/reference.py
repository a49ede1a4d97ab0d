"""The torch reference: the same network built from torch modules with the same numbers.

Its stages come from the autograd graph itself (retain_grad on every z_l and y_l, .grad on every
parameter), so each scratch stage has a twin computed by autograd, not by our formulas. This is
the only module of engine/ that imports torch.
"""

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import grad, vmap

from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.net.stages import Stage, assemble

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

TORCH_ACTIVATIONS: dict[str, type[nn.Module] | object] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def _engine_backward(loss: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> None:
    """torch.autograd.backward(loss, inputs=inputs) of a scalar loss, its gradients added to
    each input's .grad, straight to the autograd engine it calls: the same gradients
    (tests/test_torch_process.py) without ~8 µs of argument handling, a tenth of a tiny net's
    step."""
    _ENGINE.run_backward((loss,), (_ONES[loss.dtype],), False, False, inputs, False, True)


def _public_backward(loss: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> None:
    torch.autograd.backward(loss, inputs=inputs)


# Variable._execution_engine is what torch.autograd.backward hands its work to; should a torch
# release move it, the public call does the same job
_ENGINE = getattr(torch.autograd.Variable, "_execution_engine", None)
_backward = _public_backward if _ENGINE is None else _engine_backward
_ONES = {dtype: torch.ones((), dtype=dtype) for dtype in (torch.float32, torch.float64)}
# what nn.functional.mse_loss calls once it has broadcast its arguments: called on two of the
# same shape, the graph has no broadcast node to walk back through (a tenth of a step)
_mse_loss = getattr(torch._C._nn, "mse_loss", None)
_SUM, _MEAN = (torch.nn._reduction.get_enum(r) for r in ("sum", "mean"))


def _mse(y_hat: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """nn.functional.mse_loss(y_hat, y, reduction=reduction), "sum" or "mean"."""
    if _mse_loss is None or y_hat.shape != y.shape:
        return nn.functional.mse_loss(y_hat, y, reduction=reduction)
    return _mse_loss(y_hat, y, _SUM if reduction == "sum" else _MEAN)


def torch_threads() -> int:
    """The intra-op threads torch uses in this process."""
    return torch.get_num_threads()


def set_torch_threads(n: int) -> None:
    torch.set_num_threads(n)


def torch_loss(name: str, z: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample loss as torch computes it: (N,) for rows (N, n_L), a scalar for one sample
    (n_L,), then with one fused op where torch has one (the smallest autograd graph). bce is
    computed from the logits z, as BCEWithLogitsLoss does, so it is stable where the sigmoid
    saturates."""
    one = y.ndim == 1
    if name in ("squared_error", "half_squared_error"):
        value = (_mse(y_hat, y, "sum") if one
                 else ((y_hat - y) ** 2).sum(-1))
        return value if name == "squared_error" else 0.5 * value
    if name == "mse":
        return _mse(y_hat, y, "mean") if one else ((y_hat - y) ** 2).mean(-1)
    if name == "bce":
        if one:
            return nn.functional.binary_cross_entropy_with_logits(z, y)
        return nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none").mean(-1)
    raise KeyError(name)


class TorchNet:
    """`spec` as nn.Linear layers and activation modules, holding a copy of `params`."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray]):
        self.spec = spec
        self.dtype = TORCH_DTYPES[spec.dtype]
        layers: list[nn.Module] = []
        for layer, act in enumerate(spec.activations, start=1):
            linear = nn.Linear(spec.sizes[layer - 1], spec.sizes[layer], dtype=self.dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(np.asarray(params[f"w{layer}"])))
                linear.bias.copy_(torch.as_tensor(np.asarray(params[f"b{layer}"])))
            layers += [linear, TORCH_ACTIVATIONS[act]()]
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.activations = [m for m in self.model if not isinstance(m, nn.Linear)]
        # every parameter is a view of one flat vector, and its .grad a view of another, which
        # follows the loss: an SGD step is one add_, and its numbers [loss, gradient,
        # parameters] are one cat. Nothing here sets a .grad to None (zero_grad(set_to_none=
        # False)): a new .grad would no longer be in the vector. The two have storages of their
        # own: gradients added during backward() must not look like parameters changed in place
        order = [p for linear in self.linears for p in (linear.weight, linear.bias)]
        self._head = torch.zeros(1 + spec.n_params, dtype=self.dtype)
        self._loss, self._grads = self._head[:1], self._head[1:]
        self._flat = torch.cat([p.detach().reshape(-1) for p in order])
        offset = 0
        for linear in self.linears:
            for kind in ("weight", "bias"):
                shape, size = getattr(linear, kind).shape, getattr(linear, kind).numel()
                parameter = nn.Parameter(self._flat[offset:offset + size].view(shape))
                parameter.grad = self._grads[offset:offset + size].view(shape)
                setattr(linear, kind, parameter)
                offset += size
        self._parameters = tuple(p for linear in self.linears for p in (linear.weight,
                                                                        linear.bias))
        # what a training step reads, looked up once: a module's attributes and calls cost
        # more than the arithmetic of a tiny net
        self._layers = [(linear.weight, linear.bias, act.forward)
                        for linear, act in zip(self.linears, self.activations, strict=True)]
        # name in the Sequential ("0.weight") -> our name ("w1")
        self._names = {f"{2 * (layer - 1)}.{kind}": f"{kind[0]}{layer}"
                       for layer in range(1, spec.n_layers + 1) for kind in ("weight", "bias")}

    def params(self) -> Params:
        """Copies of the current parameters in the engine layout."""
        return {self._names[k]: v.detach().numpy().copy() for k, v in self.model.named_parameters()}

    def tensor(self, v: np.ndarray) -> torch.Tensor:
        """`v` in this net's dtype (sharing its memory where it has that dtype already)."""
        return torch.as_tensor(np.asarray(v), dtype=self.dtype)

    def _forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        zs, ys = [], []
        h = x
        for linear, act in zip(self.linears, self.activations, strict=True):
            z = linear(h)
            h = act(z)
            zs.append(z)
            ys.append(h)
        return zs, ys

    def stages(self, x: np.ndarray, y: np.ndarray) -> list[Stage]:
        """Every stage of one sample's pass (x (n_0,), y (n_L,)), values read off autograd."""
        self.model.zero_grad(set_to_none=False)
        xt, yt = self.tensor(x)[None, :], self.tensor(y)[None, :]
        zs, ys = self._forward(xt)
        for t in zs + ys:
            t.retain_grad()
        loss = torch_loss(self.spec.loss, zs[-1], ys[-1], yt).sum()
        loss.backward()

        n_layers = self.spec.n_layers
        values: dict[str, np.ndarray] = {"loss": _np(loss)}
        for layer in range(1, n_layers + 1):
            linear = self.linears[layer - 1]
            values[f"z{layer}"] = _np(zs[layer - 1][0])
            values["y_hat" if layer == n_layers else f"a{layer}"] = _np(ys[layer - 1][0])
            values[f"dL/dz{layer}"] = _np(zs[layer - 1].grad[0])
            values[f"dL/dw{layer}"] = _np(linear.weight.grad)
            values[f"dL/db{layer}"] = _np(linear.bias.grad)
            if layer < n_layers:
                values[f"dL/da{layer}"] = _np(ys[layer - 1].grad[0])
        values["dL/dy_hat"] = _np(self._output_grad(zs[-1], ys[-1], yt)[0])
        return assemble(self.spec, values)

    def _output_grad(self, z: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dL/dŷ by autograd. bce's graph runs from the logits and never passes through ŷ, so
        its dL/dŷ is autograd's derivative of binary_cross_entropy at ŷ, in a graph of its own."""
        if y_hat.grad is not None and self.spec.loss != "bce":
            return y_hat.grad
        # a diverged network's ŷ is NaN, which binary_cross_entropy refuses with an exception:
        # its derivative there is NaN, as every other stage of that network shows
        lost = torch.isnan(y_hat.detach())
        leaf = torch.where(lost, 0.5, y_hat.detach()).requires_grad_(True)
        value = nn.functional.binary_cross_entropy(leaf, y, reduction="none").mean(-1).sum()
        return torch.where(lost, torch.nan, torch.autograd.grad(value, leaf)[0])

    def _sample_loss(self, params: dict[str, torch.Tensor], x: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        zs, ys = [], []
        h = x[None, :]
        for linear_index, act in zip(range(0, len(self.model), 2), self.activations, strict=True):
            z = h @ params[f"{linear_index}.weight"].T + params[f"{linear_index}.bias"]
            h = act(z)
            zs.append(z)
            ys.append(h)
        return torch_loss(self.spec.loss, zs[-1], ys[-1], y[None, :])[0]

    def per_sample_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Params]:
        """Each sample's loss (N,) and gradients {name: (N, *shape)}, batched with
        torch.func (vmap over grad), at the current parameters."""
        params = {k: v.detach() for k, v in self.model.named_parameters()}
        xt, yt = self.tensor(x), self.tensor(y)
        losses = vmap(self._sample_loss, in_dims=(None, 0, 0))(params, xt, yt)
        grads = vmap(grad(self._sample_loss), in_dims=(None, 0, 0))(params, xt, yt)
        return _np(losses), {self._names[k]: _np(v) for k, v in grads.items()}

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float
                   ) -> tuple[float, np.ndarray, np.ndarray]:
        """One SGD step on the batch x (N, n_0), y (N, n_L): the batch's mean loss before the
        update, the gradient of that mean and the parameters after the update, both as flat
        vectors in the order w1, b1, w2, ... (not shared with this net)."""
        one = len(x) == 1
        row = torch.empty(1 + 2 * self.spec.n_params, dtype=self.dtype)
        self.step(self.tensor(x[0] if one else x), self.tensor(y[0] if one else y), lr, row)
        n, values = self.spec.n_params, row.numpy()
        return float(values[0]), values[1:1 + n], values[1 + n:]

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, row: torch.Tensor) -> None:
        """`train_step` on one sample (x (n_0,), y (n_L,)) or a batch (x (N, n_0), y (N, n_L)),
        in this net's dtype, its numbers written into `row` (1 + 2 n_params): the loss, the
        gradient, the parameters after. One sample runs on vectors (addmv) with a fused loss,
        a third cheaper than as a batch of one; autograd adds the gradients into the zeroed
        vector of .grads, and no tensor is made for them."""
        self._grads.zero_()
        one, h = x.ndim == 1, x
        z = h
        for w, b, act in self._layers:
            z = torch.addmv(b, w, h) if one else nn.functional.linear(h, w, b)
            h = act(z)
        loss = torch_loss(self.spec.loss, z, h, y)
        loss = loss if one else loss.mean()
        _backward(loss, self._parameters)
        self._loss.copy_(loss.detach())
        self._flat.add_(self._grads, alpha=-lr)   # flat needs no grad: nothing is recorded
        torch.cat((self._head, self._flat), out=row)

    def flat_params(self) -> np.ndarray:
        """Every parameter in one vector, in the order w1, b1, w2, ... (a copy)."""
        return self._flat.numpy().copy()

    def gradients_loop(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Params]:
        """The same as `per_sample_gradients` with one backward() per sample: the way the seeds
        do it, kept as the baseline the batched path is measured against."""
        losses, grads = [], {name: [] for name in self._names.values()}
        for xi, yi in zip(self.tensor(x), self.tensor(y), strict=True):
            self.model.zero_grad(set_to_none=False)
            zs, ys = self._forward(xi[None, :])
            loss = torch_loss(self.spec.loss, zs[-1], ys[-1], yi[None, :]).sum()
            loss.backward()
            losses.append(loss.item())
            for key, p in self.model.named_parameters():
                grads[self._names[key]].append(_np(p.grad))
        order = self.spec.param_names
        return (np.asarray(losses, dtype=self.spec.np_dtype),
                {name: np.stack(grads[name]) for name in order})

    def sgd_step(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        """θ ← θ - lr·g in place, g from this engine's own gradients (a batch's mean)."""
        with torch.no_grad():
            for key, p in self.model.named_parameters():
                p.sub_(lr * self.tensor(grads[self._names[key]]))


class Trainer:
    """`net`'s SGD steps on the samples x (N, n_0), y (N, n_L), each step's numbers written
    straight into a row of an array: train_step's numbers with none of its arrays, and the
    samples made tensors once. The torch helper's loop (engine/train/torch_process.py)."""

    def __init__(self, net: TorchNet, x: np.ndarray, y: np.ndarray):
        self.net, self.x, self.y = net, net.tensor(x), net.tensor(y)

    def steps_into(self, batches: Iterable[np.ndarray], lr: float, rows: np.ndarray) -> None:
        """A step on each batch of row indices in turn, the k-th one's loss, gradient and
        parameters after written into rows[k] (see TorchNet.step)."""
        out, step = torch.from_numpy(rows), self.net.step
        for k, batch in enumerate(batches):
            if len(batch) == 1:
                i = int(batch[0])
                step(self.x[i], self.y[i], lr, out[k])
            else:
                chosen = torch.from_numpy(np.asarray(batch, dtype=np.int64))
                step(self.x[chosen], self.y[chosen], lr, out[k])


def _np(t: torch.Tensor) -> np.ndarray:
    """A numpy copy: tensor.numpy() shares memory with the tensor."""
    return t.detach().numpy().copy()
