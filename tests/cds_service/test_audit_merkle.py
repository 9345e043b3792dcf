"""RFC 6962 Merkle tree: roots and audit paths against the certificate-transparency vectors.

The expected values are the published test vectors of the certificate-transparency reference
implementation (C++ ``merkletree/merkle_tree_test.cc``: ``kSHA256Roots`` and ``kSHA256Paths``,
also in google/trillian ``testonly/constants.go``), copied as literals, not computed here.
"""

from __future__ import annotations

import pytest

from cds_service.audit import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
PATHS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
]


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert (
        merkle.tree_head([]).hex()
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_ct_vectors(size: int) -> None:
    assert merkle.tree_head(LEAVES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), PATHS)
def test_audit_paths_match_ct_vectors(index: int, size: int, path: list[str]) -> None:
    hashes = [merkle.leaf_hash(d) for d in LEAVES[:size]]
    assert [p.hex() for p in merkle.inclusion_path(index, hashes)] == path
    root = merkle.root_from_inclusion_path(
        index, size, hashes[index], [bytes.fromhex(p) for p in path]
    )
    assert root.hex() == ROOTS[size - 1]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 64, 100])
def test_every_leaf_proves_and_a_wrong_leaf_does_not(size: int) -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = merkle.root_from_leaf_hashes(hashes)
    for index in range(size):
        path = merkle.inclusion_path(index, hashes)
        assert merkle.root_from_inclusion_path(index, size, hashes[index], path) == root
        wrong = merkle.leaf_hash(b"forged")
        assert merkle.root_from_inclusion_path(index, size, wrong, path) != root


def test_path_of_wrong_length_is_refused() -> None:
    hashes = [merkle.leaf_hash(bytes([i])) for i in range(8)]
    path = merkle.inclusion_path(3, hashes)
    with pytest.raises(ValueError, match="shorter"):
        merkle.root_from_inclusion_path(3, 8, hashes[3], path[:-1])
    with pytest.raises(ValueError, match="longer"):
        merkle.root_from_inclusion_path(3, 8, hashes[3], [*path, path[0]])
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_path(8, hashes)
