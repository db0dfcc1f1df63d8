"""MerkleTree: branches from the cached levels equal those hashed anew, for every size
and position (odd levels pair their last hash with itself)."""

import hashlib

import pytest
from hypothesis import given, strategies as st

from electrumx.chain.merkle import MerkleTree, branch_and_root


def leaves(count):
    return [hashlib.sha256(n.to_bytes(4, "little")).digest() for n in range(count)]


@given(st.integers(min_value=1, max_value=300), st.data())
def test_branches_and_root_equal_branch_and_root(count, data):
    hashes = leaves(count)
    tree = MerkleTree(hashes)
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    branch, root = branch_and_root(hashes, index)
    assert tree.branch(index) == branch and tree.root() == root
    assert tree.index(hashes[index]) == index and tree.leaf(index) == hashes[index]
    assert tree.leaves() == hashes and len(tree) == count


def test_every_position_of_odd_and_even_sizes():
    for count in (1, 2, 3, 5, 8, 13, 64, 65):
        hashes = leaves(count)
        tree = MerkleTree(hashes)
        assert [tree.branch(i) for i in range(count)] == \
            [branch_and_root(hashes, i)[0] for i in range(count)]


def test_index_finds_only_whole_aligned_leaves():
    hashes = leaves(4)
    tree = MerkleTree(hashes)
    straddling = hashes[0][16:] + hashes[1][:16]      # in the bytes, not a leaf
    for absent in (straddling, hashes[0][:31], bytes(32)):
        with pytest.raises(ValueError):
            tree.index(absent)
    with pytest.raises(ValueError):
        tree.branch(4)
    with pytest.raises(ValueError):
        MerkleTree([])
