"""Argument types shared by the CLI's commands (argparse shows their message with the option's name)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    return _checked(text, float, "a number", lambda value: 0 < value < 1, "must be within (0, 1)")


def held_out_share(text: str) -> float:
    """A share of documents to hold out: 0 (none) up to, not including, 1."""
    return _checked(text, float, "a number", lambda value: 0 <= value < 1, "must be at least 0 and below 1")


def positive_int(text: str) -> int:
    return _checked(text, int, "a whole number", lambda value: value >= 1, "must be >= 1")


def _checked(text: str, convert: Callable[[str], Number], kind: str, valid: Callable[[Number], bool],
             rule: str) -> Number:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{rule}, not {text}")
    return value
