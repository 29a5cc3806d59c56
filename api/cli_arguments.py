"""Argument types shared by the CLI's commands (argparse shows their message with the option's name)."""

from __future__ import annotations

import argparse


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be within (0, 1), not {text}")
    return value
