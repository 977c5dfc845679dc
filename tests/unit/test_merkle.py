"""The RFC 9162 tree against the transparency-dev/merkle test vectors, and proofs round-trip at every size."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from services.audit import merkle

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "merkle_vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves_hex"]]


def b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


@pytest.mark.parametrize("v", VECTORS["inclusion"], ids=lambda v: v["file"])
def test_inclusion_vectors_verify_exactly_when_they_should(v):
    ok = merkle.verify_inclusion(
        v["leafIdx"],
        v["treeSize"],
        base64.b64decode(v["leafHash"]),
        b64(v["proof"]),
        base64.b64decode(v["root"]),
    )
    assert ok is not v["wantErr"]
    if not v["wantErr"]:
        # Our tree over the reference leaves gives the same root and the same proof.
        tree = LEAVES[: v["treeSize"]]
        assert merkle.root(tree) == base64.b64decode(v["root"])
        assert merkle.inclusion_proof(v["leafIdx"], tree) == b64(v["proof"])


@pytest.mark.parametrize("v", VECTORS["consistency"], ids=lambda v: v["file"])
def test_consistency_vectors_verify_exactly_when_they_should(v):
    ok = merkle.verify_consistency(
        v["size1"], v["size2"], base64.b64decode(v["root1"]), base64.b64decode(v["root2"]), b64(v["proof"])
    )
    assert ok is not v["wantErr"]
    if not v["wantErr"]:
        assert merkle.consistency_proof(v["size1"], LEAVES[: v["size2"]]) == b64(v["proof"])


def test_every_proof_of_every_tree_up_to_33_leaves_verifies_and_a_flipped_bit_does_not():
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(33)]
    frontier: list[bytes] = []
    for n in range(1, len(leaves) + 1):
        frontier = merkle.append(frontier, n - 1, leaves[n - 1])
        root = merkle.root(leaves[:n])
        assert merkle.frontier_root(frontier) == root
        for i in range(n):
            proof = merkle.inclusion_proof(i, leaves[:n])
            assert merkle.verify_inclusion(i, n, leaves[i], proof, root)
            assert not merkle.verify_inclusion(i, n, leaves[(i + 1) % 33], proof, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, leaves[:n])
            old = merkle.root(leaves[:m])
            assert merkle.verify_consistency(m, n, old, root, proof)
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_consistency(m, n, old, root, bad)


def test_the_empty_tree_has_the_hash_of_nothing():
    assert merkle.frontier_root([]) == merkle.root([]) == merkle.EMPTY_ROOT


def test_the_nodes_an_append_completes_are_the_perfect_subtrees_proofs_read():
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(40)]
    stored: dict[tuple[int, int], bytes] = {(0, i): leaf for i, leaf in enumerate(leaves)}
    frontier: list[bytes] = []
    for n, leaf in enumerate(leaves):
        frontier, completed = merkle.append_with_nodes(frontier, n, leaf)
        for level, index, value in completed:
            assert value == merkle.root(leaves, index << level, (index + 1) << level)
            stored[(level, index)] = value
    for size in (1, 7, 8, 33, 40):
        for i in range(size):

            def path(nodes: merkle.Nodes, i: int = i, size: int = size) -> list[bytes]:
                return merkle.inclusion_path(i, size, nodes)

            wanted = merkle.needed_nodes(path)
            assert wanted <= set(stored) and len(wanted) <= 2 * size.bit_length() ** 2
            assert merkle.inclusion_path(i, size, lambda lv, ix: stored[(lv, ix)]) == merkle.inclusion_proof(
                i, leaves[:size]
            )
        for m in range(1, size + 1):
            assert merkle.consistency_path(
                m, size, lambda lv, ix: stored[(lv, ix)]
            ) == merkle.consistency_proof(m, leaves[:size])
