"""Combinatorial indices of TS 38.214 (beam subset i_{1,2}, FD basis subset i_{1,6}). numpy-free.

Both use the combinatorial number system: a K-subset written as strictly decreasing values
``x_0 > x_1 > ... > x_{K-1} >= 0`` has the index ``sum_j C(x_j, K - j)``, a bijection onto
``0 .. C(N, K) - 1`` when every ``x_j < N``. The standard's formulas are this with
``x_j = N - 1 - n_j`` for the subset ``n_0 < n_1 < ...``:

* i_{1,2} = sum_{i=0}^{L-1} C(N1 N2 - 1 - n^(i), L - i)   (38.214 5.2.2.2.3 / 5.2.2.2.5)
* i_{1,6} = sum_{f=1}^{Mv-1} C(N - 1 - n3^(f), Mv - f)     (N = N3, or 2 Mv in the window case)

The standard tabulates C(x, y) only up to x = 15 (beams) and x = 18 (FD); ``math.comb``
gives the same values and covers N1 = 32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.errors import InvalidInput


def subset_index(subset: Sequence[int], n: int) -> int:
    """Index of a K-subset of ``0 .. n-1`` (any order): ``sum_j C(n - 1 - s_j, K - j)`` over
    the subset sorted ascending.

    >>> subset_index([0, 1], 4), subset_index([2, 3], 4)
    (5, 0)
    """
    s = sorted(int(v) for v in subset)
    k = len(s)
    if len(set(s)) != k or (k and (s[0] < 0 or s[-1] >= n)):
        raise InvalidInput(f"subset {s} is not {k} distinct values in 0..{n - 1}")
    return sum(math.comb(n - 1 - v, k - j) for j, v in enumerate(s))


def subset_from_index(index: int, n: int, k: int) -> list[int]:
    """Inverse of :func:`subset_index`: the ascending K-subset of ``0 .. n-1`` with that index.

    The greedy decoding of 38.214: for each j take the largest ``x`` with
    ``C(x, K - j) <= remaining index``; the value is ``n - 1 - x``.
    """
    total = math.comb(n, k)
    if not 0 <= index < total:
        raise InvalidInput(f"combinatorial index {index} outside 0..{total - 1} (C({n}, {k}))")
    out: list[int] = []
    rem = index
    hi = n - 1  # x_j < x_{j-1}
    for j in range(k):
        d = k - j
        x = hi
        while x >= d and math.comb(x, d) > rem:
            x -= 1
        # x >= d - 1 always: C(d - 1, d) = 0 <= rem
        rem -= math.comb(x, d)
        out.append(n - 1 - x)
        hi = x - 1
    return out
