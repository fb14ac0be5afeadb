"""The argument checks in ``sinlstm_sym.core.checks``: good values pass (converted), bad ones
raise ``TypeError`` (wrong kind) or ``ValueError`` (right kind, wrong value) naming the argument."""
import math
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from sinlstm_sym.core.checks import (check_bool, check_choice, check_condition, check_float, check_int,
                                check_int_sequence, check_name, check_weights)

NAME = "my_arg"


def assert_rejects(check, value, error, *args, name=NAME, **kwargs):
    """``check(name, value, ...)`` raises exactly ``error`` with ``name`` in the message."""
    with pytest.raises(error, match=re.escape(name)) as info:
        check(name, value, *args, **kwargs)
    assert type(info.value) is error


# --- check_condition --------------------------------------------------------------------------------

def test_check_condition_passes_when_true():
    assert check_condition(True, "never raised") is None


@pytest.mark.parametrize("error", [ValueError, TypeError, RuntimeError])
def test_check_condition_raises_given_error_with_message(error):
    with pytest.raises(error, match="^boom 42$"):
        check_condition(False, "boom 42", error)


def test_check_condition_defaults_to_value_error():
    with pytest.raises(ValueError, match="nope"):
        check_condition(1 > 2, "nope")


# --- check_int --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, minimum", [(0, None), (-7, None), (5, 5), (6, 1), (np.int64(3), 0),
                                            (np.int32(2), 2), (10 ** 20, 0)])
def test_check_int_accepts_and_returns_python_int(value, minimum):
    out = check_int(NAME, value, minimum=minimum)
    assert type(out) is int and out == value


@pytest.mark.parametrize("value, minimum, error", [
    (True, None, TypeError), (False, 0, TypeError), (1.0, None, TypeError), (1.5, 0, TypeError),
    ("1", None, TypeError), (None, None, TypeError), (np.float64(2), None, TypeError),
    (0, 1, ValueError), (-1, 0, ValueError), (4, 5, ValueError),
])
def test_check_int_rejects(value, minimum, error):
    assert_rejects(check_int, value, error, minimum=minimum)


# --- check_float ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, kwargs, expected", [
    (1.5, {}, 1.5), (3, {}, 3.0), (-2.25, {}, -2.25), (np.float32(0.5), {}, 0.5), (np.int64(4), {}, 4.0),
    (Fraction(1, 4), {}, 0.25), (0.0, dict(minimum=0.0), 0.0), (1e-12, dict(minimum=0.0, strict_minimum=True), 1e-12),
    (-1.0, dict(minimum=-1.0), -1.0),
])
def test_check_float_accepts_and_returns_float(value, kwargs, expected):
    out = check_float(NAME, value, **kwargs)
    assert type(out) is float and out == expected


@pytest.mark.parametrize("value, kwargs, error", [
    (True, {}, TypeError), ("0.1", {}, TypeError), (None, {}, TypeError), (1 + 0j, {}, TypeError),
    (Decimal("0.5"), {}, TypeError), ([1.0], {}, TypeError),
    (math.nan, {}, ValueError), (math.inf, {}, ValueError), (-math.inf, {}, ValueError), (np.nan, {}, ValueError),
    (-0.5, dict(minimum=0.0), ValueError), (0.0, dict(minimum=0.0, strict_minimum=True), ValueError),
    (0, dict(minimum=0.0, strict_minimum=True), ValueError), (-1e-300, dict(minimum=0.0), ValueError),
])
def test_check_float_rejects(value, kwargs, error):
    assert_rejects(check_float, value, error, **kwargs)


def test_check_float_rejects_int_too_large_for_float():
    assert_rejects(check_float, 10 ** 400, ValueError)


# --- check_choice -----------------------------------------------------------------------------------

CHOICES = ("last", "sequence")


@pytest.mark.parametrize("value", CHOICES)
def test_check_choice_accepts(value):
    assert check_choice(NAME, value, CHOICES) == value


@pytest.mark.parametrize("value, error", [("foo", ValueError), ("LAST", ValueError), ("", ValueError),
                                          (None, TypeError), (1, TypeError), (b"last", TypeError)])
def test_check_choice_rejects_and_lists_choices(value, error):
    assert_rejects(check_choice, value, error, CHOICES)
    with pytest.raises(error, match="sequence"):
        check_choice(NAME, value, CHOICES)


# --- check_bool -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False])
def test_check_bool_accepts(value):
    assert check_bool(NAME, value) is value


@pytest.mark.parametrize("value", [1, 0, "yes", "True", None, 1.0])
def test_check_bool_rejects(value):
    assert_rejects(check_bool, value, TypeError)


# --- check_name -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["data", "label", "lstm_0", "_x", "X1", "a"])
def test_check_name_accepts(value):
    assert check_name(NAME, value) == value


@pytest.mark.parametrize("value, error", [("", ValueError), ("a b", ValueError), ("a-b", ValueError),
                                          ("a.b", ValueError), ("data\n", ValueError), (" ", ValueError),
                                          (5, TypeError), (None, TypeError), (b"data", TypeError)])
def test_check_name_rejects(value, error):
    assert_rejects(check_name, value, error)


# --- check_int_sequence -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, kwargs, expected", [
    ([1, 2], {}, (1, 2)), ((30,), {}, (30,)), (range(1, 4), {}, (1, 2, 3)), (np.array([5, 2]), {}, (5, 2)),
    ([3, 1, 2], {}, (3, 1, 2)), ([2, 2], dict(distinct=False), (2, 2)), ([], dict(allow_empty=True), ()),
    ([0, 4], dict(minimum=0), (0, 4)),
])
def test_check_int_sequence_accepts(value, kwargs, expected):
    out = check_int_sequence(NAME, value, **kwargs)
    assert out == expected and all(type(i) is int for i in out)


@pytest.mark.parametrize("value, kwargs, error", [
    ("abc", {}, TypeError), (b"ab", {}, TypeError), (5, {}, TypeError), (None, {}, TypeError),
    ([1.5], {}, TypeError), ([True], {}, TypeError), ([1, "2"], {}, TypeError), ([2.0], {}, TypeError),
    ([], {}, ValueError), ([0], {}, ValueError), ([3, -1], dict(minimum=0), ValueError),
    ([1, 1], {}, ValueError), ([4, 5], dict(minimum=5), ValueError),
])
def test_check_int_sequence_rejects(value, kwargs, error):
    assert_rejects(check_int_sequence, value, error, **kwargs)


# --- check_weights ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, count, expected", [
    ([1, 2], 2, (1.0, 2.0)), ((0, 1), 2, (0.0, 1.0)), ([0.5], 1, (0.5,)),
    (np.array([1.0, 0.0, 3.0]), 3, (1.0, 0.0, 3.0)),
])
def test_check_weights_accepts(value, count, expected):
    out = check_weights(NAME, value, count)
    assert out == expected and all(type(w) is float for w in out)


@pytest.mark.parametrize("value, count, error", [
    ("ab", 2, TypeError), (5, 1, TypeError), (None, 2, TypeError), (["a", 1], 2, TypeError),
    ([True, 1], 2, TypeError),
    ([1], 2, ValueError), ([1, 2, 3], 2, ValueError), ([], 1, ValueError),
    ([-1, 2], 2, ValueError), ([1, math.nan], 2, ValueError), ([math.inf, 1], 2, ValueError),
    ([0, 0], 2, ValueError), ([0.0], 1, ValueError),
])
def test_check_weights_rejects(value, count, error):
    assert_rejects(check_weights, value, error, count)


# --- parse_env_int ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [("3", 3), ("0007", 7), ("64", 64), ("9" * 5000, 10 ** 18)])
def test_parse_env_int_takes_ascii_digits(text, expected):
    from sinlstm_sym.core.checks import parse_env_int
    assert parse_env_int("MY_VAR", text, minimum=1) == expected


@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "\uff13", "+3", "-1", " 3", "3.0", "", "0"])
def test_parse_env_int_refuses_other_text_naming_the_variable(text):
    from sinlstm_sym.core.checks import parse_env_int
    with pytest.raises(ValueError, match=r"^environment variable MY_VAR must be an integer >= 1, got ") as info:
        parse_env_int("MY_VAR", text, minimum=1)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "12x"])
def test_a_unicode_native_thread_count_warns_and_is_not_reported_as_a_flag(monkeypatch, caplog, text):
    import logging

    from sinlstm_sym.constants import NATIVE_THREADS_ENV
    from sinlstm_sym.native import _check_threads_setting
    monkeypatch.setenv(NATIVE_THREADS_ENV, text)
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.native"):
        _check_threads_setting()  # no ValueError (it was reported as "argument --cell")
    assert f"{NATIVE_THREADS_ENV}={text!r} is not a positive integer written with the digits 0-9" in caplog.text
