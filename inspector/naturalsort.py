"""Names in the order people (and Keras) count: `_variables/2` before `_variables/10`.

Manifests and JSON keep their documented bytewise order; tables sort with `natural_key`, and so do
the readers where a file's numbered names stand for an order (HDF5 `vars/2` before `vars/10`,
optimizer `_variables/N`).
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import add

_SPLIT = re.compile(r"(\d+)").split


def natural_key(text: str) -> list:
    """Sort key that compares runs of digits as numbers: 'a/2' < 'a/10' < 'b'.

    The split always alternates text, number, text, ... so equal positions hold equal types
    and lists compare without a type error.
    """
    parts = _SPLIT(text)
    parts[1::2] = map(int, parts[1::2])
    return parts


_DIGITS_TO_NUL = str.maketrans(dict.fromkeys("0123456789", "\x00"))
_OTHERS_TO_SPACE = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isdigit()})


def natural_keys(texts: list[str]) -> list:
    """`natural_key` of every text, as values that order exactly as those keys do but cost far less
    to build and to compare (sorting a table of 100,000 keys).

    Where every text is ASCII without NUL or \\x01, each is one string: digit runs become NUL, a
    length mark and the number without leading zeros (so 007 == 7 < 10), and NUL sorts below every
    character a text can hold, as a list ending early sorts below a longer one.  The texts are joined
    and cut into digit runs and what lies between them by `str.translate` and `str.split` (a regex
    over the join costs five times more), and the runs encoded by maps.  Anything else gets
    `natural_key`'s lists.
    """
    joined = "\x01".join(texts)
    if not joined:
        return [""] * len(texts)  # no text, or one empty text
    if joined.isascii() and "\x00" not in joined and joined.count("\x01") == len(texts) - 1:
        runs = joined.translate(_OTHERS_TO_SPACE).split()
        # Between two runs lies at least one other character: the empty pieces are the insides of
        # runs, and the texts before the first run and after the last, when a run starts or ends the join.
        between = list(filter(None, joined.translate(_DIGITS_TO_NUL).split("\x00")))
        if joined[0].isdigit():  # (ASCII: 0-9 only)
            between.insert(0, "")
        if joined[-1].isdigit():
            between.append("")
        digits = list(map(str.lstrip, runs, repeat("0")))
        pieces = [""] * (2 * len(runs) + 1)
        pieces[0::2] = between
        try:
            pieces[1::2] = map(add, map(add, repeat("\x00"), map(chr, map(add, map(len, digits), repeat(0x20)))), digits)
        except ValueError:  # a digit run too long for its length mark (over a million digits)
            pass
        else:
            return "".join(pieces).split("\x01")
    return [natural_key(text) for text in texts]
