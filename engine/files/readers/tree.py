"""The shape of what a gradient file holds, before names and samples are worked out.

Every reader turns its file into the same small tree: a Leaf is one array of numbers; a list
holds nodes in order (a printed Python list or tuple, a torch.save'd list); a dict maps names to
nodes (a printed dict, a state_dict, an .npz). Strings and None may sit in lists, as in the
(name, tensor) pairs of a printed OrderedDict.
"""

from dataclasses import dataclass
from typing import Union

import numpy as np

MAX_DEPTH = 32


@dataclass
class Leaf:
    """One array of numbers. dtype is the one the file states or implies ("float32" for a
    printed tensor without dtype=), or None. explicit is True for a tensor or array object, False
    for a bare bracketed list (so [[1, 2], [3, 4]] is one 2-D array, while two tensors in a list
    stay two arrays). line is where it starts in a text file."""

    values: np.ndarray
    dtype: str | None = None
    explicit: bool = True
    line: int | None = None

    @property
    def where(self) -> str:
        return f"line {self.line}: " if self.line else ""


Node = Union[Leaf, list["Node"], dict[str, "Node"], str, None]  # noqa: UP007 (a recursive alias)
