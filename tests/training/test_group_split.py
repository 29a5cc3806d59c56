"""The group-aware split: deterministic, groups whole, the training share near the fraction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from training.group_split import split_by_group


@dataclass(frozen=True)
class Item:
    id: str
    group: str | None = None


def items() -> list[Item]:
    """60 items: 20 without a group and 40 in 13 groups of 1 to 5 paraphrases."""
    sizes = [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 1]
    grouped = [Item(f"g{g}-{k}", group=f"g{g}") for g, size in enumerate(sizes) for k in range(size)]
    return [Item(f"s{i}") for i in range(20)] + grouped


def key(item: Item) -> str:
    return item.group or item.id


def test_same_seed_same_split_and_another_seed_another() -> None:
    first = split_by_group(items(), group_of=key, train_fraction=0.7, seed=3)
    assert split_by_group(items(), group_of=key, train_fraction=0.7, seed=3) == first
    shuffled = split_by_group(list(reversed(items())), group_of=key, train_fraction=0.7, seed=3)
    assert {i.id for i in shuffled[0]} == {i.id for i in first[0]}  # the seed decides, not the input order
    assert {i.id for i in split_by_group(items(), group_of=key, train_fraction=0.7, seed=4)[0]} \
        != {i.id for i in first[0]}


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_groups_never_straddle_and_the_fraction_holds(fraction: float, seed: int) -> None:
    data = items()
    train, test = split_by_group(data, group_of=key, train_fraction=fraction, seed=seed)
    assert sorted(i.id for i in train + test) == sorted(i.id for i in data)
    assert not {key(i) for i in train} & {key(i) for i in test}
    largest = 5
    assert abs(len(train) - fraction * len(data)) <= largest / 2
    assert train and test


def test_each_side_gets_a_group_and_bad_fractions_are_refused() -> None:
    two = [Item("a", "x"), Item("b", "x"), Item("c", "y")]
    for seed in range(5):
        train, test = split_by_group(two, group_of=key, train_fraction=0.9, seed=seed)
        assert train and test
    for fraction in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="train_fraction"):
            split_by_group(two, group_of=key, train_fraction=fraction, seed=0)
