"""RFC 6962 Merkle tree hashes and inclusion proofs (restated in RFC 9162 §2.1).

Pure functions over byte strings, no database: the same code runs inside the service and in
``oncocds audit check-proof`` on a machine that has only the proof file.

- ``MTH({}) = SHA-256()``; ``MTH({d0}) = SHA-256(0x00 || d0)`` (leaf hash);
- ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with ``k`` the largest power of
  two smaller than ``n`` (node hash).

The 0x00/0x01 prefixes keep leaves and interior nodes from being confused (second-preimage
resistance, RFC 6962 §2.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head over already-hashed leaves (iterative, O(n) hashing, O(log n) stack)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    # Merge complete subtrees left to right; the stack holds (height, hash) with strictly
    # decreasing heights, which is exactly RFC 6962's left-balanced split.
    stack: list[tuple[int, bytes]] = []
    for h in hashes:
        height, value = 0, h
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            value = node_hash(left, value)
            height += 1
        stack.append((height, value))
    _, value = stack.pop()
    while stack:
        _, left = stack.pop()
        value = node_hash(left, value)
    return value


def tree_head(leaves: Sequence[bytes]) -> bytes:
    """MTH over raw leaf data."""
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


def inclusion_path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 ``PATH(m, D[n])`` for leaf ``index`` over leaf hashes.

    Raises:
        ValueError: ``index`` outside the tree.
    """
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of size {n}")
    path: list[bytes] = []
    lo, hi, m = 0, n, index
    # Walk down from the root, collecting the sibling subtree hash at each level; the
    # resulting list is ordered leaf-to-root as RFC 6962 specifies (reversed at the end).
    siblings: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            siblings.append(root_from_leaf_hashes(hashes[lo + k : hi]))
            hi = lo + k
        else:
            siblings.append(root_from_leaf_hashes(hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    path.extend(reversed(siblings))
    return path


def root_from_inclusion_path(
    index: int, tree_size: int, leaf: bytes, path: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its audit path.

    Raises:
        ValueError: the path does not fit a tree of ``tree_size`` at ``index``.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} outside a tree of size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path shorter than the tree is deep")
    return r
