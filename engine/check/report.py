"""The comparison of two gradient files: per parameter how far apart they are, the first parameter
that disagrees walking backward from the loss, a diagnosis (engine/check/diagnosis.py), the
catalogued mistake that makes the file again where the model and data are known
(engine/check/reproduce.py), and the notes of what was assumed to align them. `to_json` gives the
command line's --json object; `format_report` the readable table."""

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from engine.check.align import Aligned, align
from engine.check.compare import (
    FLOAT64_DIGITS,
    Carry,
    coarser,
    compare_arrays,
    dtype_carry,
    float32_values,
    printed_carry,
    printing_rtol,
)
from engine.check.diagnosis import backward_order, located, patterns
from engine.check.notation import unicode_notation
from engine.check.reproduce import KnownRun, Reproduction, known_run, reproduce, within_rounding
from engine.files.datasets import Dataset
from engine.files.gradset import GradientSet
from engine.files.readers import read_gradients
from engine.net.spec import NetworkSpec

__all__ = ["CompareReport", "FileComparison", "FileProgress", "ParamReport", "backward_order",
           "compare_aligned", "compare_files", "compare_sets", "diagnose", "file_carry",
           "format_report"]

# progress(path, bytes done, bytes in all) while a large file is read; True stops the reading
FileProgress = Callable[[str, int, int], bool | None]


@dataclass(frozen=True)
class ParamReport:
    """One parameter over all samples. worst = (sample, *element): the sample counted from 1
    as the .dat blocks count, the element's index from 0 as numpy counts."""

    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    digits: float
    worst: tuple[int, ...]
    agree: bool
    within_rounding: bool = False   # beyond rtol and atol, but within what rounding explains


@dataclass
class CompareReport:
    """Everything `compare` says about two files."""

    agree: bool
    samples: int
    params: dict[str, ParamReport]
    first_disagreement: str | None
    rtol: float
    atol: float
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reproduced_by: str | None = None
    exact_to: str | None = None     # the dtype whose rounding explains every difference

    def to_json(self) -> dict:
        """The --json object: agree, samples, params{shape, max_abs_diff, max_rel_diff, digits,
        worst}, first_disagreement, diagnosis, notes, reproduced_by (a mistake's label or
        None)."""
        return {
            "agree": self.agree,
            "samples": self.samples,
            "params": {
                name: {"shape": list(p.shape), "max_abs_diff": _json_float(p.max_abs_diff),
                       "max_rel_diff": _json_float(p.max_rel_diff),
                       "digits": round(p.digits, 2), "worst": list(p.worst),
                       "within_rounding": p.within_rounding}
                for name, p in self.params.items()},
            "exact_to": self.exact_to,
            "first_disagreement": self.first_disagreement,
            "diagnosis": list(self.diagnosis),
            "notes": list(self.notes),
            "reproduced_by": self.reproduced_by,
        }


def _json_float(value: float) -> float | str:
    # JSON has no infinity; a NaN against a number is an infinite difference
    return value if np.isfinite(value) else "inf"


def compare_aligned(aligned: Aligned, rtol: float | None = None, atol: float | None = None,
                    precision: str | Carry = "float32") -> CompareReport:
    """Compare two aligned gradient sets parameter by parameter over every sample. `precision`
    (a dtype's name, or what both files carry) gives the default tolerances where rtol or atol
    is not given, and caps the digits; the values are compared as read."""
    carry = precision if isinstance(precision, Carry) else dtype_carry(precision)
    rtol = carry.rtol if rtol is None else rtol
    atol = carry.atol if atol is None else atol
    params: dict[str, ParamReport] = {}
    for name in aligned.names:
        result = compare_arrays(aligned.a[name], aligned.b[name], rtol, atol)
        sample, *element = result.worst
        params[name] = ParamReport(name, tuple(aligned.a[name].shape[1:]), result.max_abs_diff,
                                   result.max_rel_diff, min(result.digits, carry.digits),
                                   (sample + 1, *element), result.agree)
    first = next((n for n in backward_order(aligned.names) if not params[n].agree), None)
    report = CompareReport(all(p.agree for p in params.values()), aligned.samples, params,
                           first, rtol, atol, notes=list(aligned.notes))
    report.diagnosis = diagnose(aligned, report)
    return report


def diagnose(aligned: Aligned, report: CompareReport) -> list[str]:
    """Plain sentences about where and how the files disagree, from the numbers alone: where
    the disagreement starts, which parameters disagree, and the patterns of diagnosis.py."""
    if report.agree:
        low = min(p.digits for p in report.params.values())
        return [f"all {len(report.params)} parameters agree in every one of the "
                f"{report.samples} samples, to at least {low:.1f} significant digits"]
    order = backward_order(aligned.names)
    agree = {name: p.agree for name, p in report.params.items()}
    bad = [n for n in order if not agree[n]]
    rounding = _rounding_level(aligned, report, bad)
    if rounding:
        return [f"disagreeing: {', '.join(bad)}", rounding]
    return [located(order, report.first_disagreement or order[0], agree),
            f"disagreeing: {', '.join(bad)}",
            *patterns(aligned, agree, report.rtol, report.atol)]


# a disagreement this small against the parameter's largest value over all samples is float32
# rounding showing through a cancellation, not a mistake (float32's unit is 6e-8)
ROUNDING_LEVEL = 1e-5


def _rounding_level(aligned: Aligned, report: CompareReport, bad: list[str]) -> str | None:
    """A sentence when every disagreement is at rounding level against its parameter's scale."""
    parts = []
    for name in bad:
        scale = float(max(np.max(np.abs(aligned.a[name])), np.max(np.abs(aligned.b[name]))))
        diff = report.params[name].max_abs_diff
        if not (np.isfinite(diff) and scale > 0 and diff <= ROUNDING_LEVEL * scale):
            return None
        parts.append(f"{name} {diff:.2g} against values up to {scale:.2g}")
    return ("every difference is at rounding level against the size of its parameter over all "
            f"samples ({'; '.join(parts)}): it shows where values nearly cancel (ŷ ≈ y makes "
            "2(ŷ - y) small, and its relative difference large), not a mistake in the backprop; "
            "files made with SGD along the way part a little more with every step as each "
            "engine rounds its own parameters. To confirm, compare with --atol 1e-6 or export "
            "in float64")


def format_report(report: CompareReport, name_a: str, name_b: str,
                  subject: str = "the files") -> str:
    """A readable table, one row per parameter in backward order, then diagnosis and notes;
    the verdict says `subject` agree or disagree."""
    lines = [f"A: {name_a}", f"B: {name_b}",
             f"{report.samples} samples; agreement: |A - B| <= {report.atol:g} + "
             f"{report.rtol:g}·max(|A|, |B|)", ""]
    header = (f"{'param':<7}{'shape':<11}{'max |diff|':>12}{'max rel':>12}{'digits':>8}  "
              f"{'worst (sample: element)':<26}verdict")
    lines += [header, "-" * len(header)]
    for name in backward_order(list(report.params)):
        p = report.params[name]
        sample, *element = p.worst
        where = f"{sample}: {list(element)}" if element else f"{sample}"
        lines.append(f"{name:<7}{list(p.shape)!s:<11}{p.max_abs_diff:>12.3g}"
                     f"{p.max_rel_diff:>12.3g}{p.digits:>8.1f}  {where:<26}"
                     f"{_verdict(p)}")
    agreed = f"{subject} agree" + (f", exact to {report.exact_to}" if report.exact_to else "")
    lines += ["", "Verdict: " + (agreed if report.agree else
                                 f"{subject} disagree, first at {report.first_disagreement}")]
    lines += [f"  - {s}" for s in report.diagnosis]
    if report.notes:
        lines += ["Notes:"] + [f"  - {n}" for n in report.notes]
    return "\n".join(lines)


def _verdict(p: ParamReport) -> str:
    if p.within_rounding:
        return "agree (rounding)"
    return "agree" if p.agree else "DISAGREE"


@dataclass
class FileComparison:
    """Two gradient files read, aligned and compared."""

    a: GradientSet
    b: GradientSet
    aligned: Aligned
    report: CompareReport


def _data_note(gs: GradientSet, data: Dataset) -> str:
    """Whether the samples in `gs` are those of `data`, as far as the file shows them."""
    if gs.x is None:
        return f"{gs.source} does not record its inputs: taken to be the data ({data.name})"
    if gs.x.shape != data.x.shape:
        return (f"{gs.source} holds {len(gs.x)} samples of {gs.x.shape[1]} inputs, not those "
                f"of {data.name}")
    differs = np.flatnonzero(~np.all(np.isclose(gs.x, data.x, rtol=1e-6, atol=1e-12), axis=1))
    if differs.size:
        return (f"{gs.source}: {differs.size} of its {len(gs.x)} samples have other inputs than "
                f"the data ({data.name}), the first at sample {differs[0] + 1}: the files may "
                "not come from this data")
    return f"{gs.source}: its samples are those of the data ({data.name})"


def file_carry(gs: GradientSet, rtol: float | None = None) -> tuple[Carry, str | None]:
    """What one file's numbers carry, and a note saying so unless the file states its dtype and
    loses nothing (ours, torch.save, .npy). A stated dtype gives its own tolerances; unstated,
    float32's. Printed text takes those of the dtype it states, else float64's when it prints
    FLOAT64_DIGITS or more and its values are not all float32 numbers, else float32's; with rtol
    no tighter than its digits hold. An explicit `rtol` tighter than that is noted."""
    p = gs.printed_digits
    if p is None:
        if gs.dtype is not None:
            return dtype_carry(gs.dtype), None
        return dtype_carry("float32"), (f"{gs.source} does not state a dtype: it is held to "
                                        "float32's tolerances")
    single = gs.dtype is None and float32_values(
        np.concatenate([gs.stacked(name).ravel() for name in gs.names]), p)
    if gs.dtype is not None:
        dtype, why = gs.dtype, f", of the {gs.dtype} values it states"
    elif p >= FLOAT64_DIGITS and not single:
        dtype, why = "float64", ": more than float32 carries, so it is held to float64's tolerances"
    elif p >= FLOAT64_DIGITS:
        dtype, why = "float32", (", every one of them a float32 value: it is held to float32's "
                                 "tolerances")
    else:
        dtype, why = "float32", " and does not state a dtype: it is held to float32's tolerances"
    carry = printed_carry(p, dtype)
    if gs.dtype is None and not single:
        # float64 values printed with fewer digits than float32 carries hold all they print
        carry = Carry(carry.rtol, carry.atol, float(p))
    if rtol is not None and rtol < printing_rtol(p):
        why = f": agreement closer than {printing_rtol(p):.0e} is beyond what it holds"
    elif carry.rtol > dtype_carry(dtype).rtol:
        why = f": it cannot agree closer than {carry.rtol:.0e}"
    return carry, f"{gs.source} prints {p} significant digits{why}"


def _default_note(carry: Carry, which: tuple[str, ...], carries: dict[str, Carry]) -> str:
    """Which default tolerances (`which`: "rtol", "atol") were taken, and from which file."""
    used = " and ".join(f"{name} {getattr(carry, name):g}" for name in which)
    coarsest = [source for source, c in carries.items()
                if all(getattr(c, name) == getattr(carry, name) for name in which)]
    if len(coarsest) == len(carries):
        whose = "what both files hold"
    elif coarsest:
        whose = f"what {coarsest[0]} holds, the coarser of the two files"
    else:
        whose = "each the looser of the two files'"
    return f"default {used}: {whose}"


def compare_files(path_a: str | os.PathLike, path_b: str | os.PathLike,
                  model: NetworkSpec | None = None, rtol: float | None = None,
                  atol: float | None = None, data: Dataset | None = None,
                  params: Mapping[str, np.ndarray] | None = None,
                  progress: FileProgress | None = None) -> FileComparison:
    """Read both files (any supported kind), align them and compare. A file that cannot be read
    or the two that cannot be aligned raise GradientFileError naming the file.

    The values are compared as read. Default tolerances are those of the coarser file (see
    file_carry): float64's only when both carry float64; an explicit rtol or atol is used as
    given, with a note where it asks more than a printout holds.

    Where files disagree and a network with its parameters is known (`model` with `params`,
    or a model.json beside either file) along with the samples (`data`, a data.csv beside
    either file, or the inputs a file records), the catalogued mistakes are re-made to name
    the one that makes a file (report.reproduced_by).

    `progress(path, done, total)` is called as a file too large to hold as text is read (see
    read_gradients); returning True stops it with ReadCancelled."""
    def read(path: str | os.PathLike) -> GradientSet:
        told = None if progress is None else functools.partial(progress, os.fspath(path))
        return read_gradients(path, model_spec=model, progress=told)

    return compare_sets(read(path_a), read(path_b), model, rtol, atol, data, params)


def compare_sets(a: GradientSet, b: GradientSet, model: NetworkSpec | None = None,
                 rtol: float | None = None, atol: float | None = None,
                 data: Dataset | None = None,
                 params: Mapping[str, np.ndarray] | None = None) -> FileComparison:
    """compare_files for two gradient sets already read (or made: `check` runs a user's code
    into one): aligned, compared, diagnosed, the catalogued mistake named where the run is
    known."""
    aligned = align(a, b, model)
    # a file's own notes as a reader should see them (older exports wrote δ_{l+1})
    notes = [f"{gs.source}: {unicode_notation(note)}" for gs in (a, b) for note in gs.notes]
    (carry_a, why_a), (carry_b, why_b) = file_carry(a, rtol), file_carry(b, rtol)
    notes += [why for why in (why_a, why_b) if why]
    carry = coarser(carry_a, carry_b)
    defaulted = tuple(name for name, given in (("rtol", rtol), ("atol", atol)) if given is None)
    if defaulted and (why_a or why_b):
        notes.append(_default_note(carry, defaulted, {a.source: carry_a, b.source: carry_b}))
    if data is not None:
        notes += [_data_note(gs, data) for gs in (a, b)]
    aligned.notes[:0] = notes
    report = compare_aligned(aligned, rtol, atol, carry)
    if not report.agree:
        run = known_run((a, b), model, params, data)
        if run is not None and rtol is None and atol is None:
            _forgive_rounding(aligned, report, run)
        if not report.agree:
            found = Reproduction() if run is None else reproduce(
                aligned, run.spec, run.params, run.x, run.y, run.lr, run.source)
            report.diagnosis += found.sentences
            report.reproduced_by = found.reproduced_by
    return FileComparison(a, b, aligned, report)


def _forgive_rounding(aligned: Aligned, report: CompareReport, run: KnownRun) -> None:
    """Where the default tolerances call a difference a disagreement but rounding explains it
    (two correct passes of the known run, engine/check/rounding.py), the parameter agrees; when all
    do, so do the files, exact to the run's dtype."""
    within = within_rounding(aligned, run)
    if within is None:
        return
    forgiven = [name for name, p in report.params.items() if not p.agree and within[name]]
    for name in forgiven:
        report.params[name] = replace(report.params[name], agree=True, within_rounding=True)
    if not forgiven:
        return
    report.first_disagreement = next((n for n in backward_order(aligned.names)
                                      if not report.params[n].agree), None)
    report.agree = report.first_disagreement is None
    if report.agree:
        dtype = run.spec.dtype
        report.exact_to = dtype
        report.diagnosis = [
            f"every difference is within {dtype} rounding of a right pass of {run.source}: "
            f"{', '.join(backward_order(forgiven))} part by more than rtol {report.rtol:g} and "
            f"atol {report.atol:g} where values nearly cancel, as two correct {dtype} passes do"]
    else:
        report.diagnosis = diagnose(aligned, report)
