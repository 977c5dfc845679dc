"""RFC 9162 Merkle trees over the trail: hashing, a compact frontier, proofs and their checks. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
# The hash of the perfect subtree at (level, index): leaves index*2**level .. (index+1)*2**level - 1.
Nodes = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """`SHA-256(0x00 || data)`: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """`SHA-256(0x01 || left || right)`: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def append_with_nodes(
    frontier: list[bytes], size: int, leaf: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Add a leaf hash to a tree of `size` leaves kept as its perfect-subtree roots, left to right;
    also returns the interior nodes (level >= 1, index, hash) the new leaf completes."""
    nodes = list(frontier)
    node, level, completed = leaf, 0, []
    while size & 1:
        node = node_hash(nodes.pop(), node)
        size >>= 1
        level += 1
        completed.append((level, size, node))
    nodes.append(node)
    return nodes, completed


def append(frontier: list[bytes], size: int, leaf: bytes) -> list[bytes]:
    """Add a leaf hash to a tree of `size` leaves kept as its perfect-subtree roots, left to right."""
    return append_with_nodes(frontier, size, leaf)[0]


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The tree head of a frontier (the empty tree's for none)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for node in reversed(frontier[:-1]):
        root = node_hash(node, root)
    return root


def root(leaves: Sequence[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """MTH of the leaf hashes `leaves[lo:hi]`."""
    hi = len(leaves) if hi is None else hi
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(root(leaves, lo, lo + k), root(leaves, lo + k, hi))


def _mth(nodes: Nodes, lo: int, hi: int) -> bytes:
    # Every range in the RFC 9162 recursion starts at a multiple of its split size, so its left
    # part is always a stored perfect subtree: O(log n) lookups per range.
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        return nodes(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(_mth(nodes, lo, lo + k), _mth(nodes, lo + k, hi))


def inclusion_path(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """PATH(index, D[size]) from perfect-subtree hashes (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, lo, lo + k), _mth(nodes, lo + k, hi)]
        return [*path(m - k, lo + k, hi), _mth(nodes, lo, lo + k)]

    return path(index, 0, size)


def consistency_path(size1: int, size2: int, nodes: Nodes) -> list[bytes]:
    """PROOF(size1, D[size2]) from perfect-subtree hashes (RFC 9162 2.1.4.1)."""
    if not 0 < size1 <= size2:
        raise ValueError("the earlier size must be between 1 and the tree size")

    def sub(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [_mth(nodes, lo, hi)]
        k = _split(n)
        if m <= k:
            return [*sub(m, lo, lo + k, whole), _mth(nodes, lo + k, hi)]
        return [*sub(m - k, lo + k, hi, False), _mth(nodes, lo, lo + k)]

    return sub(size1, 0, size2, True)


def needed_nodes(proof: Callable[[Nodes], list[bytes]]) -> set[tuple[int, int]]:
    """The (level, index) nodes a proof reads (its shape does not depend on the hashes)."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    proof(record)
    return wanted


def _from_leaves(leaves: Sequence[bytes]) -> Nodes:
    return lambda level, index: root(leaves, index << level, (index + 1) << level)


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves): the audit path of one leaf."""
    return inclusion_path(index, len(leaves), _from_leaves(leaves))


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, leaves): the consistency proof from an earlier size."""
    return consistency_path(size1, len(leaves), _from_leaves(leaves))


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], tree_root: bytes) -> bool:
    """Whether `proof` shows the leaf hash at `index` in the tree of `size` with `tree_root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == tree_root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of `size1` with `root1` is a prefix of `size2` with `root2`."""
    if size1 < 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0
