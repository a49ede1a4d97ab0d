"""Comparison of two arrays: differences, digits, verdict, worst element, grades."""

import numpy as np
import pytest

from engine.check.compare import (
    ACCEPTABLE,
    FLAGGED,
    GOOD,
    TOLERANCES,
    compare_arrays,
    default_tolerance,
    dtype_digits,
    grade,
)


def test_identical_arrays_agree_to_every_digit_the_dtype_has():
    a = np.array([1.5, -2.0, 0.0], dtype=np.float32)
    result = compare_arrays(a, a.copy())
    assert result.agree and result.max_abs_diff == 0 and result.max_rel_diff == 0
    assert result.digits == pytest.approx(7.22, abs=0.01)
    assert compare_arrays(a.astype(np.float64), a.astype(np.float64)).digits == pytest.approx(
        15.95, abs=0.01)


def test_relative_difference_and_digits():
    a = np.array([[1.0, 100.0], [0.5, 0.0]])
    b = np.array([[1.0, 100.1], [0.5, 0.0]])
    result = compare_arrays(a, b)
    assert result.max_abs_diff == pytest.approx(0.1)
    assert result.max_rel_diff == pytest.approx(0.1 / 100.1)
    assert result.digits == pytest.approx(-np.log10(0.1 / 100.1))
    assert not result.agree
    assert result.worst == (0, 1)


def test_worst_is_the_element_furthest_out_of_tolerance_not_the_largest_diff():
    a = np.array([1000.0, 1e-3])
    b = np.array([1000.001, 2e-3])  # 1e-6 relative vs 100% relative
    assert compare_arrays(a, b).worst == (1,)


def test_defaults_are_numpys_for_float32_and_tighter_for_float64():
    assert default_tolerance(np.float32) == (1e-5, 1e-8) == TOLERANCES["float32"]
    assert default_tolerance(np.float64) == (1e-9, 1e-12) == TOLERANCES["float64"]
    # a float32 rounding difference passes in float32 and fails in float64
    a = np.array([0.1], dtype=np.float64)
    b = np.array([np.float32(0.1)], dtype=np.float64)
    assert compare_arrays(a.astype(np.float32), b.astype(np.float32)).agree
    assert not compare_arrays(a, b).agree


def test_verdict_is_symmetric():
    a, b = np.array([1.0]), np.array([1.0 + 1.5e-9])
    assert compare_arrays(a, b).agree == compare_arrays(b, a).agree


def test_given_tolerances_are_used():
    a, b = np.array([1.0]), np.array([1.01])
    assert not compare_arrays(a, b).agree
    assert compare_arrays(a, b, rtol=0.02).agree
    assert compare_arrays(a, b, rtol=0, atol=0.02).agree


def test_nan_against_a_number_is_an_infinite_difference():
    result = compare_arrays(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert not result.agree and result.max_abs_diff == np.inf and result.digits == 0
    assert result.worst == (1,)
    both = compare_arrays(np.array([np.nan]), np.array([np.nan]))
    assert both.agree
    signs = compare_arrays(np.array([np.inf]), np.array([-np.inf]))
    assert not signs.agree


def test_shapes_must_match():
    with pytest.raises(ValueError, match="cannot compare shapes"):
        compare_arrays(np.zeros(3), np.zeros((3, 1)))


@pytest.mark.parametrize(("rel", "expected"), [(0, GOOD), (9e-8, GOOD), (1e-7, ACCEPTABLE),
                                               (9e-5, ACCEPTABLE), (1e-4, FLAGGED), (1, FLAGGED)])
def test_grades_follow_gradient_checking_notes(rel, expected):
    assert grade(rel) == expected


def test_dtype_digits():
    assert dtype_digits("float32") == pytest.approx(7.22, abs=0.01)
    assert dtype_digits(np.float64) == pytest.approx(15.95, abs=0.01)
