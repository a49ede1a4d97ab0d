"""Your code in the stepping view: what a user's own backpropagation returned (a Checked of
engine/usercode.py), by stage key and sample, for the session to show in the scratch engine's
place beside torch.

gradients() gives the parameter-gradient stages (dL/dw<l>, dL/db<l>); stages(), when the file
defines it, the others it names. A stage neither gives is not the user's: the session shows the
scratch engine's value there, graded as not checked.
"""

from dataclasses import dataclass

import numpy as np

from engine.usercode import Checked


@dataclass(frozen=True)
class YourValues:
    """`label` (FILE.py:NAME), the values by stage key, each (samples, *the stage's shape) in
    the run's dtype, and the check they come from."""

    label: str
    values: dict[str, np.ndarray]
    checked: Checked

    @property
    def samples(self) -> int:
        return self.checked.comparison.aligned.samples

    @property
    def staged(self) -> bool:
        """Whether the code gave stages (a stages() function) besides the gradients."""
        return self.checked.stages is not None

    def at(self, key: str, sample: int) -> np.ndarray | None:
        """The value the code gave for stage `key` of sample `sample` (from 0), or None."""
        found = self.values.get(key)
        return None if found is None else found[sample]


def your_values(checked: Checked, dtype: np.dtype) -> YourValues:
    """The stages `checked`'s code gave, converted once to the run's `dtype`. The gradients
    are those gradients() returned (what the report grades), in the network's layout; its
    stages() gives the rest."""
    values: dict[str, np.ndarray] = {}
    if checked.stages is not None:
        values.update(checked.stages.values)
    aligned = checked.comparison.aligned
    values.update({f"dL/d{name}": aligned.b[name] for name in aligned.names})
    return YourValues(checked.label, {key: np.asarray(value, dtype=dtype)
                                      for key, value in values.items()}, checked)

