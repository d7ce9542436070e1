"""How many of a (query, document) pair's pieces the reference keeps: its pair truncation as closed-form arithmetic.

Written once, over the ops of a graph language (``ops``: ``minimum``, ``maximum``, ``where``, ``less_equal``,
``add``, ``sub``, each taking tensors or Python ints), so that the ONNX and TF framings compute the same thing
elementwise on the two length vectors, with no Loop.

``tokenizers`` (``src/utils/truncation.rs``, ``truncate_encodings``) cuts a pair of ``a`` and ``b`` pieces to
``room`` = ``max_length`` less the template's special tokens, from the right:

* ``longest_first``: nothing when ``a + b <= room``. Else, with ``s`` the shorter length (the query when
  ``a == b``): if ``2 s <= room`` the shorter side keeps ``s`` and the longer ``room - s``; otherwise the
  shorter keeps ``room // 2`` and the longer ``room - room // 2`` (so at a tie the document gets the odd one).
  This is the same as removing one piece at a time from the longer side.
* ``only_first`` / ``only_second``: that side keeps ``room`` less the other's length. Where that would leave it
  no piece (the other side alone fills ``room``), the reference raises "Sequence to truncate too short"; the
  graphs cannot raise per row, so they keep none of that side and cut the other to ``room`` (a sequence the
  encoder can still take).
"""
from __future__ import annotations

from typing import Any


def kept_pair_lengths(a: Any, b: Any, *, room: int, strategy: str, ops: Any) -> tuple[Any, Any]:
    """Return (query pieces kept, document pieces kept) for the pieces ``a`` and ``b`` of each pair.

    Args:
        a: the query's piece count per pair (a vector of the graph language).
        b: the document's.
        room: ``max_length`` less the pair template's special tokens (0 or more).
        strategy: "longest_first", "only_first" or "only_second" (``Framing.pair_truncation``).
        ops: the graph language's elementwise ops (module docstring).

    Raises:
        ValueError: another strategy (``read_framing`` keeps such a tokenizer from pairs).
    """
    if strategy == "only_second":
        return ops.minimum(a, room), ops.minimum(b, ops.maximum(ops.sub(room, a), 0))
    if strategy == "only_first":
        return ops.minimum(a, ops.maximum(ops.sub(room, b), 0)), ops.minimum(b, room)
    if strategy != "longest_first":
        raise ValueError(f"pair truncation {strategy!r}; supported: longest_first, only_first, only_second")
    fits = ops.less_equal(ops.add(a, b), room)
    shorter = ops.minimum(a, b)
    alone = ops.less_equal(ops.add(shorter, shorter), room)  # the shorter side fits whole beside the longer cut
    short_kept = ops.where(alone, shorter, room // 2)
    long_kept = ops.where(alone, ops.sub(room, shorter), room - room // 2)
    query_shorter = ops.less_equal(a, b)  # a tie counts the query as the shorter (it gets room // 2)
    return (ops.where(fits, a, ops.where(query_shorter, short_kept, long_kept)),
            ops.where(fits, b, ops.where(query_shorter, long_kept, short_kept)))
