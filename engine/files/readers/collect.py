"""From what a file holds (labelled values, lists, dicts) to samples of w1, b1, w2, ...

Rules, the same for text, torch.save and .npz files:

- a value labelled with a parameter name goes into the current sample; a name seen again in
  the same sample starts the next sample (so files that print sample after sample work);
- a list of arrays, or a dict of named arrays, is one sample; a list or dict of those is one
  sample each; a dict of named arrays with a leading sample axis (w1 of shape (N, out, in))
  is N samples;
- x, y and loss (input, target, label, losses) are kept beside the sample they sit in;
- unlabelled arrays take the names w1, b1, w2, b2, ... in order; when they come as all the
  weights (2-D) then all the biases (1-D), weights and biases are numbered apart; unlabelled
  arrays one after another are cut into samples where their shapes repeat (or every 2L arrays
  when the network is known);
- a value whose label names nothing we know ("prediction") is skipped, with a note.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from engine.files.gradset import GradientFileError, param_order, shape_text
from engine.files.readers.names import (
    UNLABELLED,
    ParamKey,
    canonical_names,
    layer_beyond,
    parse_label,
    read_label,
    too_deep,
)
from engine.files.readers.text import PrintedLeaf
from engine.files.readers.tree import MAX_DEPTH, Leaf, Node
from engine.net.spec import NetworkSpec


@dataclass
class _Sample:
    named: dict[ParamKey, Leaf] = field(default_factory=dict)
    unnamed: list[Leaf] = field(default_factory=list)
    extras: dict[str, Leaf] = field(default_factory=dict)
    sealed: bool = False  # its list or dict has ended: the next parameter starts a new sample

    def has_params(self) -> bool:
        return bool(self.named or self.unnamed)


@dataclass
class Collected:
    """Samples with canonical names, extras stacked over samples, and what was assumed.
    printed_digits: the most significant digits any gradient prints, for printed text (None
    for binary files, and for text whose gradients are all zeros)."""

    samples: list[dict[str, np.ndarray]]
    x: np.ndarray | None
    y: np.ndarray | None
    losses: np.ndarray | None
    dtype: str | None
    notes: list[str]
    printed_digits: int | None = None


class Collector:
    """Feed it labelled nodes in file order with `add`, then call `finish`."""

    def __init__(self, source: str, spec: NetworkSpec | None = None) -> None:
        self.source, self.spec = source, spec
        self.raw: list[_Sample] = []
        self.cur = _Sample()
        self.labels: dict[ParamKey, str] = {}
        self.skipped: Counter[str] = Counter()
        self.notes: list[str] = []

    def fail(self, problem: str, leaf: Leaf | None = None) -> GradientFileError:
        return GradientFileError(self.source, (leaf.where if leaf else "") + problem)

    def _next(self) -> None:
        self.raw.append(self.cur)
        self.cur = _Sample()

    def add(self, label: str | None, node: Node, depth: int = 0) -> None:
        """One value of the file with the label written before it (None: no label)."""
        if depth > MAX_DEPTH:
            raise self.fail(f"lists or dicts nested more than {MAX_DEPTH} deep; this is not a "
                            "gradient file")
        if isinstance(node, Leaf):
            self.leaf(label, node)
        elif isinstance(node, dict):
            self.mapping(list(node.items()), depth)
        elif isinstance(node, list):
            self.sequence(node, depth)

    def sequence(self, items: list[Node], depth: int) -> None:
        if items and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                         for p in items):
            self.mapping([(p[0], p[1]) for p in items], depth)  # type: ignore[index]
            return
        items = [i for i in items if i is not None and not isinstance(i, str)]
        if not items:
            return
        if all(isinstance(i, Leaf) for i in items):
            self.start()
            for leaf in items:
                self.leaf(None, leaf)  # type: ignore[arg-type]
            self.cur.sealed = True
        elif any(isinstance(i, Leaf) for i in items):
            raise self.fail("a list mixes arrays with lists or dicts of arrays")
        else:
            for item in items:
                self.start()
                self.add(None, item, depth + 1)
                self.cur.sealed = True

    def mapping(self, items: list[tuple[str, Node]], depth: int) -> None:
        kinds = [(key, parse_label(str(key)), value) for key, value in items]
        for key, kind, value in kinds:
            if isinstance(kind, ParamKey) and layer_beyond(kind):
                raise self.fail(too_deep(str(key), kind), value if isinstance(value, Leaf)
                                else None)
        if not any(isinstance(kind, ParamKey) for _, kind, _ in kinds):
            # Keys name samples ({"sample_0": {...}}), or number the arrays of one sample.
            if kinds and all(str(k).isdigit() and isinstance(v, Leaf) for k, _, v in kinds):
                self.sequence([v for _, _, v in kinds], depth)  # {0: grad_w1, 1: grad_b1}
                return
            for key, _, value in kinds:
                if isinstance(value, Leaf):
                    self.skipped[str(key)] += 1
                elif isinstance(value, list | dict):
                    self.start()
                    self.add(None, value, depth + 1)
                    self.cur.sealed = True
            return
        named = [(k, kind, v) for k, kind, v in kinds if kind not in (None, UNLABELLED)]
        for key, kind, value in kinds:
            if kind is None and isinstance(value, Leaf | list | dict):
                self.skipped[str(key)] += 1
        if all(isinstance(v, list) and v and all(isinstance(i, Leaf) for i in v)
               for _, _, v in named):
            self.series([(k, v) for k, _, v in named])  # type: ignore[misc]
            return
        if not all(isinstance(v, Leaf) for _, _, v in named):
            raise self.fail("a dict mixes named arrays with lists or dicts")
        leaves: list[tuple[str, Leaf]] = [(str(k), v) for k, _, v in named]  # type: ignore[misc]
        n = self._sample_axis(leaves)
        if n is None:
            self.start()
            for key, leaf in leaves:
                self.leaf(key, leaf)
            self.cur.sealed = True
        else:
            self.notes.append(f"arrays with a leading axis of {n} read as {n} samples")
            self.series([(k, [replace(leaf, values=v, explicit=True) for v in leaf.values])
                         for k, leaf in leaves])

    def series(self, columns: list[tuple[str, list[Leaf]]]) -> None:
        """Named columns of per-sample arrays: {"w1": [s1, s2, ...], "b1": [...]}."""
        lengths = {len(column) for _, column in columns}
        if len(lengths) > 1:
            raise self.fail("its named lists of per-sample arrays differ in length: "
                            + ", ".join(f"{k} has {len(c)}" for k, c in columns))
        for i in range(lengths.pop()):
            self.start()
            for key, column in columns:
                self.leaf(key, column[i])
            self.cur.sealed = True

    def _sample_axis(self, leaves: list[tuple[str, Leaf]]) -> int | None:
        """N when every named array carries a leading axis of N samples, else None. Without a
        network that needs every weight to be 3-D; with one, each array's shape after the first
        axis must fit its parameter (in either layout, flat, or a bias as (1, out))."""
        firsts = {leaf.values.shape[0] if leaf.values.ndim else None for _, leaf in leaves}
        if len(firsts) != 1 or None in firsts:
            return None
        params = [(key, parse_label(key), leaf) for key, leaf in leaves]
        params = [(k, p, leaf) for k, p, leaf in params if isinstance(p, ParamKey)]
        if self.spec is None:
            weights = [leaf for _, p, leaf in params if p.kind == "w"]  # type: ignore[union-attr]
            return firsts.pop() if weights and all(w.values.ndim == 3 for w in weights) else None
        mapping, _ = canonical_names([p for _, p, _ in params], self.source)  # type: ignore[misc]
        for _, p, leaf in params:
            name = mapping[p]  # type: ignore[index]
            if int(name[1:]) > self.spec.n_layers:
                return None
            fits = _fitting_shapes(self.spec, name)
            if leaf.values.shape in fits or leaf.values.shape[1:] not in fits:
                return None
        return firsts.pop()

    def start(self) -> None:
        """A list or dict of one sample's parameters begins."""
        if self.cur.has_params():
            self._next()

    def leaf(self, label: str | None, leaf: Leaf) -> None:
        kind, named = read_label(label)
        cur = self.cur
        if isinstance(kind, ParamKey):
            if layer_beyond(kind):
                raise self.fail(too_deep(named, kind), leaf)
            if cur.unnamed and not cur.sealed:
                raise self.fail(f"{label!r} follows arrays with no name; name them all or none",
                                leaf)
            if (cur.sealed and cur.has_params()) or kind in cur.named:
                self._next()
            self.cur.named[kind] = leaf
            self.labels.setdefault(kind, named)
        elif kind in ("x", "y", "loss"):
            if kind in cur.extras:
                self._next()
            self.cur.extras[kind] = leaf  # type: ignore[index]
        elif kind == UNLABELLED:
            if cur.named and not cur.sealed:
                raise self.fail("an array with no name follows named ones ("
                                + ", ".join(self.labels[k] for k in cur.named)
                                + "); name them all or none", leaf)
            if cur.sealed and cur.has_params():
                self._next()
            self.cur.unnamed.append(leaf)
        else:
            self.skipped[str(label)] += 1

    def finish(self) -> Collected:
        """Name everything, cut unnamed runs into samples, and stack x, y and losses."""
        if self.cur.has_params() or self.cur.extras:
            self._next()
        for label, count in self.skipped.items():
            times = f" ({count} times)" if count > 1 else ""
            shown = " ".join(label.split())[:40]
            self.notes.append(f"skipped values labelled {shown!r}{times}: not a parameter")
        raw = [s for s in self.raw if s.has_params()]
        if not raw:
            found = ", ".join(repr(" ".join(label.split())[:20])
                              for label in list(self.skipped)[:6])
            raise self.fail("holds no gradients: no arrays named like w1, weight_1, fc1.weight, "
                            "and no list of arrays" + (f" (found {found})" if found else ""))
        keys = list(dict.fromkeys(k for s in raw for k in s.named))
        mapping, notes = canonical_names(keys, self.source)
        self.notes += notes
        renamed = [k for k in keys if self.labels[k] != mapping[k]]
        if renamed:
            shown = renamed[:6]
            self.notes.append("names " + ", ".join(self.labels[k] for k in shown)
                              + (", ..." if len(renamed) > 6 else "") + " read as "
                              + ", ".join(mapping[k] for k in shown)
                              + (", ..." if len(renamed) > 6 else ""))
        samples: list[dict[str, Leaf]] = []
        extras: list[dict[str, Leaf]] = []
        for s in raw:
            if s.named:
                samples.append({mapping[k]: v for k, v in s.named.items()})
                extras.append(s.extras)
            else:
                chunks = self._unnamed(s.unnamed)
                samples += chunks
                extras += [s.extras if len(chunks) == 1 else {} for _ in chunks]
        dtypes = {leaf.dtype for s in samples for leaf in s.values()}
        # the gradients' digits only: inputs and losses are often printed otherwise
        digits = max((leaf.digits for s in samples for leaf in s.values()
                      if isinstance(leaf, PrintedLeaf)), default=0)
        found = {what: self._extra(what, [e.get(what) for e in extras])
                 for what in ("x", "y", "loss")}
        return Collected([{k: s[k].values for k in param_order(s)} for s in samples],
                         found["x"], found["y"], found["loss"],
                         dtypes.pop() if len(dtypes) == 1 else None, self.notes,
                         digits or None)

    def _unnamed(self, leaves: list[Leaf]) -> list[dict[str, Leaf]]:
        if len(leaves) == 1 and leaves[0].values.ndim <= 2:
            split = self._split_flat(leaves[0])
            if split is not None:
                return split
        n = len(leaves)
        shapes = [leaf.values.shape for leaf in leaves]
        if self.spec is not None and n % (2 * self.spec.n_layers) == 0:
            period = 2 * self.spec.n_layers
        else:
            period = next((p for p in range(2, n, 2) if n % p == 0
                           and all(shapes[i] == shapes[i + p] for i in range(n - p))), n)
        if period < n:
            self.notes.append(f"{n} unnamed arrays read as {n // period} samples of {period} "
                              "(their shapes repeat)")
        return [self._assign(leaves[i:i + period]) for i in range(0, n, period)]

    def _assign(self, leaves: Sequence[Leaf]) -> dict[str, Leaf]:
        ndims = [leaf.values.ndim for leaf in leaves]
        weights = [i for i, d in enumerate(ndims) if d >= 2]
        biases = [i for i, d in enumerate(ndims) if d <= 1]
        interleaved = weights == list(range(0, len(leaves), 2))
        if len(weights) == len(biases) and not interleaved:
            note = "unnamed 2-D arrays read as weights w1, w2, ... and 1-D ones as b1, b2, ..."
            names = {i: f"w{j}" for j, i in enumerate(weights, 1)}
            names |= {i: f"b{j}" for j, i in enumerate(biases, 1)}
        else:
            note = "unnamed arrays read in order as w1, b1, w2, b2, ..."
            names = {i: f"{'wb'[i % 2]}{i // 2 + 1}" for i in range(len(leaves))}
        if note not in self.notes:
            self.notes.append(note)
        return {names[i]: leaf for i, leaf in enumerate(leaves)}

    def _split_flat(self, leaf: Leaf) -> list[dict[str, Leaf]] | None:
        """One array (P,) or (N, P) of all parameters flattened: split by the network."""
        values = leaf.values
        if self.spec is None:
            if values.ndim == 2 and values.shape[0] > 1:
                raise self.fail(f"holds a single array of shape {shape_text(values.shape)}, "
                                "not named gradients; with the network known (a model.json "
                                "beside the file, or --model) each row is split into w1, b1, ...")
            return None
        sizes = [int(np.prod(self.spec.param_shape(n))) for n in self.spec.param_names]
        if values.shape[-1] != sum(sizes):
            return None
        self.notes.append(f"one array of {sum(sizes)} values per sample split into "
                          + ", ".join(self.spec.param_names) + " (flat, in that order)")
        rows = values.reshape(-1, sum(sizes))
        cuts = np.cumsum(sizes)[:-1]
        return [{name: replace(leaf, values=part, explicit=True)
                 for name, part in zip(self.spec.param_names, np.split(row, cuts), strict=True)}
                for row in rows]

    def _extra(self, what: str, per_sample: list[Leaf | None]) -> np.ndarray | None:
        present = [leaf for leaf in per_sample if leaf is not None]
        if not present:
            return None
        if len(present) < len(per_sample):
            self.notes.append(f"{what} is given for {len(present)} of {len(per_sample)} samples;"
                              " not used")
            return None
        values = [leaf.values.ravel() for leaf in present]
        if len({v.size for v in values}) > 1 or (what == "loss" and values[0].size != 1):
            self.notes.append(f"{what} differs in size from sample to sample; not used")
            return None
        stacked = np.stack(values).astype(np.float64)
        return stacked[:, 0] if what == "loss" else stacked


def _fitting_shapes(spec: NetworkSpec, name: str) -> set[tuple[int, ...]]:
    shapes = {spec.param_shape(name, "out_in"), spec.param_shape(name, "in_out")}
    size = int(np.prod(spec.param_shape(name)))
    shapes |= {(size,), (1, size)}
    return shapes
