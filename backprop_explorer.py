"""Backprop Explorer from Python, for notebooks: check your own gradients against torch,
export both engines' gradient files, compare two gradient files.

    import backprop_explorer as bpx

    def gradients(params, x, y): ...           # your backpropagation, one sample or the batch
    report = bpx.check(gradients, samples=100)
    report.agree, report.first_disagreement, report.diagnosis
    report = bpx.check(gradients, stages=my_stages)   # its intermediate values too
    report.first_stage                         # where the pass first departs, or None
    report                                     # in Jupyter: a coloured table
    print(report)                              # the command line's table

    bpx.export("out", preset="2-10-10-1-sigmoid-squared", samples=30)
    bpx.compare("out/torch_autograd.dat", "out/my_autograd.dat")

The network is a preset (`preset=`, the default network when none) or a model.json (`model=`),
with `seed=`, `dtype=` and `layout=` as on the command line; the samples are a CSV (`data=`)
or `samples=` generated ones. A function given to `check` runs in this process (it is yours,
and a notebook shows its exceptions as they are); a path, "FILE.py" or "FILE.py:NAME", runs in
a process of its own with limits, as `app.py check` does.
"""

import argparse
import html
import os
from collections.abc import Callable
from dataclasses import dataclass

from cli.common import dataset, network
from engine.check.report import CompareReport, compare_files, format_report
from engine.check.stage_check import StageComparison
from engine.errors import UserInputError
from engine.export import export as _export
from engine.files.datasets import DEFAULT_SAMPLES
from engine.usercode import MEMORY_MB, TIMEOUT, UserCode, check_code, check_function

__all__ = ["Report", "check", "compare", "export"]

GOOD, BAD = "#e8f5e9", "#ffebee"


@dataclass
class Report:
    """What a check or a comparison found: `agree`, `first_disagreement`, `diagnosis`,
    `reproduced_by` (the catalogued mistake that makes B, or None), `params` (per parameter:
    max_abs_diff, max_rel_diff, digits, worst), `notes`, and `output` (what checked code
    printed); for checked code also `stages` (each stage against torch's, where stages()
    was given), `first_stage` (where the pass first departs, or None), and `calls` and
    `stage_calls` ("batch" or "per sample": how gradients() and stages() were called)."""

    compared: CompareReport
    name_a: str
    name_b: str
    subject: str = "the files"
    output: str = ""
    stages: StageComparison | None = None
    calls: str | None = None
    stage_calls: str | None = None

    def __getattr__(self, name: str):
        return getattr(self.compared, name)

    @property
    def first_stage(self) -> str | None:
        return self.stages.first_stage if self.stages is not None else None

    def __str__(self) -> str:
        text = format_report(self.compared, self.name_a, self.name_b, self.subject)
        return text + ("\n" + "\n".join(self.stages.lines()) if self.stages else "")

    def _repr_html_(self) -> str:
        report = self.compared
        rows = []
        for name, p in report.params.items():
            colour = GOOD if p.agree else BAD
            rows.append(
                f"<tr style='background:{colour}'><td><b>{html.escape(name)}</b></td>"
                f"<td>{list(p.shape)}</td><td>{p.max_abs_diff:.3g}</td>"
                f"<td>{p.max_rel_diff:.3g}</td><td>{p.digits:.1f}</td>"
                f"<td>{'agree' if p.agree else 'DISAGREE'}</td></tr>")
        verdict = (f"{self.subject} agree" if report.agree else
                   f"{self.subject} disagree, first at {report.first_disagreement}")
        items = "".join(f"<li>{html.escape(s)}</li>" for s in report.diagnosis)
        if self.stages is not None:
            items += (f"<li>first stage that departs from torch: "
                      f"{html.escape(self.first_stage or 'none')}</li>")
        return (f"<p><b>A</b>: {html.escape(self.name_a)}<br><b>B</b>: "
                f"{html.escape(self.name_b)}</p>"
                "<table><tr><th>param</th><th>shape</th><th>max |diff|</th><th>max rel</th>"
                f"<th>digits</th><th>verdict</th></tr>{''.join(rows)}</table>"
                f"<p style='background:{GOOD if report.agree else BAD}'><b>"
                f"{html.escape(verdict)}</b></p><ul>{items}</ul>")

    def to_json(self) -> dict:
        """`--json`'s object: compare's fields; for checked code also first_stage, stages
        and calls, as `app.py check --json` gives them."""
        found = self.compared.to_json()
        if self.calls is not None:
            found.update(self.stages.to_json() if self.stages is not None else
                         {"first_stage": None, "stages": None})
            found["calls"], found["stage_calls"] = self.calls, self.stage_calls
        return found


def _options(preset: str | None, model: str | None, seed: int, dtype: str | None,
             layout: str | None, data: str | None, samples: int) -> argparse.Namespace:
    return argparse.Namespace(preset=preset, model=model, seed=seed, dtype=dtype,
                              layout=layout, data=data, samples=samples)


def check(gradients: Callable | str | os.PathLike, *, stages: Callable | None = None,
          preset: str | None = None, model: str | None = None, data: str | None = None,
          samples: int = DEFAULT_SAMPLES, seed: int = 0, dtype: str | None = None,
          layout: str | None = None, rtol: float | None = None, atol: float | None = None,
          timeout: float = TIMEOUT, memory_mb: int = MEMORY_MB) -> Report:
    """Your gradients(params, x, y) on every sample beside torch autograd (see the module's
    docstring), and your stages(params, x, y) stage by stage when given (a file's own
    stages() is compared without it); a UserInputError says what is wrong with the options
    or what it returned."""
    if stages is not None and not callable(gradients):
        raise UserInputError("stages= goes with a function of the notebook; a file's own "
                             "stages(params, x, y) is compared whenever it defines one")
    if stages is not None and not callable(stages):
        raise UserInputError(f"stages= must be a function stages(params, x, y), not "
                             f"{type(stages).__name__}")
    options = _options(preset, model, seed, dtype, layout, data, samples)
    spec, params = network(options)
    samples_used = dataset(options, spec)
    if callable(gradients):
        checked = check_function(gradients, spec, params, samples_used, rtol, atol,
                                 stages=stages)
    else:
        checked = check_code(UserCode.parse(os.fspath(gradients)), spec, params,
                             samples_used, timeout, memory_mb, rtol, atol)
    return Report(checked.comparison.report, "torch autograd", checked.label,
                  "your code and torch", checked.run.output, checked.stages,
                  checked.run.calls, checked.run.stage_calls)


def export(outdir: str | os.PathLike, *, preset: str | None = None, model: str | None = None,
           data: str | None = None, samples: int = DEFAULT_SAMPLES, seed: int = 0,
           dtype: str | None = None, layout: str | None = None, lr: float = 0.0,
           mistake: str | None = None) -> list[str]:
    """`app.py export`: both engines' gradients of every sample, with the model and the data,
    into `outdir`; the paths written."""
    options = _options(preset, model, seed, dtype, layout, data, samples)
    spec, params = network(options)
    written = _export(outdir, spec, params, dataset(options, spec), lr, mistake=mistake)
    return [str(path) for path in written.files]


def compare(a: str | os.PathLike, b: str | os.PathLike, *, rtol: float | None = None,
            atol: float | None = None) -> Report:
    """`app.py compare A B`: two gradient files, ours or anyone's."""
    found = compare_files(a, b, rtol=rtol, atol=atol)
    return Report(found.report, os.fspath(a), os.fspath(b))
