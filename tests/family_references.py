"""numpy references for DropBlock, written from Ghiasi et al. (2018) without
kdrop: the seed rate gamma, the exact probability that each unit is dropped,
and the block structure of a dropped set."""

import math

import numpy as np


def dropblock_gamma(rate, block, spatial):
    """Equation (1): gamma = rate / block**d * prod(size) / prod(size - block + 1)."""
    valid = [size - block + 1 for size in spatial]
    return rate / block ** len(spatial) * math.prod(spatial) / math.prod(valid)


def dropblock_drop_probability(rate, block, spatial):
    """P(unit dropped) per position: a unit is kept iff none of the c block
    positions (top-left corners where a whole block fits) covering it drew a
    seed, so P = 1 - (1 - gamma) ** c, with c a product over axes."""
    gamma = dropblock_gamma(rate, block, spatial)
    counts = 1
    for size in spatial:
        index = np.arange(size)
        first = np.maximum(0, index - block + 1)
        last = np.minimum(index, size - block)
        counts = np.multiply.outer(counts, last - first + 1)
    return 1 - (1 - gamma) ** counts


def is_union_of_blocks(dropped, block):
    """Whether the boolean map `dropped` (any rank) is a union of
    `block`-wide cubes lying inside the map."""
    dropped = np.asarray(dropped, bool)
    spatial = dropped.shape
    covered = np.zeros_like(dropped)
    corners = np.ndindex(*[size - block + 1 for size in spatial])
    for corner in corners:
        window = tuple(slice(c, c + block) for c in corner)
        if dropped[window].all():
            covered[window] = True
    return bool(np.array_equal(covered, dropped))
