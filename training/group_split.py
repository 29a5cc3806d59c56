"""A deterministic train/test split that keeps groups whole: paraphrases of one question (items
sharing a group) never sit on both sides, so the held-out score is not inflated by near-copies of
training questions.

Usage::

    train, test = split_by_group(questions, group_of=lambda q: q.group or q.id, train_fraction=0.7, seed=0)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def split_by_group(items: Sequence[T], *, group_of: Callable[[T], str], train_fraction: float, seed: int
                   ) -> tuple[list[T], list[T]]:
    """Shuffle the groups with ``seed`` and fill the training side group by group up to
    ``train_fraction`` of the items; the rest is the test side. Each side lists its items group by
    group in the shuffled order (taking the first N of a side is a seeded sample).

    A group goes to training while that brings the count closer to the target, so the training
    share misses ``train_fraction`` by at most half the largest group. With two or more groups
    each side gets at least one.

    :raises ValueError: when ``train_fraction`` is not within (0, 1).
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be within (0, 1), not {train_fraction}")
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(group_of(item), []).append(item)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = train_fraction * len(items)
    train: list[T] = []
    test: list[T] = []
    for index, key in enumerate(order):
        members = groups[key]
        must_leave_one = len(order) >= 2 and index == len(order) - 1 and not test
        if not must_leave_one and (not train or len(train) + len(members) / 2 <= target):
            train.extend(members)
        else:
            test.extend(members)
    return train, test
