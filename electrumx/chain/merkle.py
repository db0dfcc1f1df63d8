"""Merkle trees of Bitcoin: roots, branches, and a cache for long-lived trees.

Leaves and nodes are internal-order 32-byte hashes; a level with an odd count
pairs its last hash with itself.  A branch lists the sibling hashes from the
leaf level up.
"""

from collections.abc import Callable, Sequence

from electrumx.chain.hashes import double_sha256


def _next_level(hashes: list[bytes]) -> list[bytes]:
    if len(hashes) & 1:
        hashes = hashes + [hashes[-1]]
    return [double_sha256(hashes[i] + hashes[i + 1]) for i in range(0, len(hashes), 2)]


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """The merkle root of a non-empty list of hashes."""
    if not hashes:
        raise ValueError("the merkle root of nothing is undefined")
    level = list(hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def branch_and_root(hashes: Sequence[bytes], index: int) -> tuple[list[bytes], bytes]:
    """Return (branch, root) proving the hash at `index` against the root."""
    if not 0 <= index < len(hashes):
        raise ValueError(f"index {index} out of range for {len(hashes)} hashes")
    level = list(hashes)
    branch = []
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        branch.append(level[index ^ 1])
        index >>= 1
        level = _next_level(level)
    return branch, level[0]


class MerkleTree:
    """Every level of one block's merkle tree, hashed once, so that each branch after
    that is a slice per level with no hashing.

    A block of thousands of transactions costs thousands of double SHA-256s for
    each `branch_and_root`; wallets ask `get_merkle` of the same recent blocks
    over and over.  Each level is one bytes object (32 bytes a hash): about
    twice the txids' bytes in all, with no object per hash.
    """

    __slots__ = ("levels", "nbytes")

    def __init__(self, leaves: Sequence[bytes]):
        if not leaves:
            raise ValueError("the merkle tree of nothing is undefined")
        level = list(leaves)
        self.levels = [b"".join(level)]
        while len(level) > 1:
            level = _next_level(level)
            self.levels.append(b"".join(level))
        self.nbytes = sum(map(len, self.levels))

    def __len__(self) -> int:
        return len(self.levels[0]) // 32

    def leaves(self) -> list[bytes]:
        leaves = self.levels[0]
        return [leaves[i:i + 32] for i in range(0, len(leaves), 32)]

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index * 32:index * 32 + 32]

    def index(self, leaf: bytes) -> int:
        """The position of `leaf` among the leaves; ValueError if absent."""
        leaves = self.levels[0]
        pos = leaves.find(leaf)
        while pos >= 0 and pos % 32:
            pos = leaves.find(leaf, pos + 1)
        if pos < 0 or len(leaf) != 32:
            raise ValueError("not a leaf of this tree")
        return pos // 32

    def root(self) -> bytes:
        return self.levels[-1]

    def branch(self, index: int) -> list[bytes]:
        """The sibling hashes of leaf `index` from the leaves up, as `branch_and_root`."""
        if not 0 <= index < len(self):
            raise ValueError(f"index {index} out of range for {len(self)} hashes")
        branch = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling * 32 >= len(level):
                sibling = index                 # an odd level pairs its last with itself
            branch.append(level[sibling * 32:sibling * 32 + 32])
            index >>= 1
        return branch


def root_from_branch(leaf: bytes, index: int, branch: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf, its index and its branch (for checking proofs)."""
    h = leaf
    for sibling in branch:
        h = double_sha256(sibling + h) if index & 1 else double_sha256(h + sibling)
        index >>= 1
    return h


class MerkleCache:
    """Branches over a growing list of leaves (block hashes) without rehashing it all.

    It keeps the hashes of one level, `depth` levels above the leaves, over the
    complete 2**depth-leaf segments.  A proof then hashes one segment of leaves
    and the cached level instead of the whole tree: about 180 KB of hashing
    instead of 88 MB for a mainnet-sized header chain.

    `leaves_for(start, count)` must return the leaf hashes [start, start+count).
    """

    def __init__(self, leaves_for: Callable[[int, int], Sequence[bytes]], depth: int = 8):
        self._leaves_for = leaves_for
        self._depth = depth
        self._seg_len = 1 << depth
        self._level: list[bytes] = []       # roots of complete segments

    def _ensure(self, length: int) -> None:
        complete = length // self._seg_len
        while len(self._level) < complete:
            start = len(self._level) * self._seg_len
            self._level.append(merkle_root(self._leaves_for(start, self._seg_len)))

    def truncate(self, length: int) -> None:
        """Forget cached segments that reach past `length` leaves (after a reorg)."""
        del self._level[length // self._seg_len:]

    def _segment(self, start: int, length: int, index: int) -> tuple[list[bytes], bytes]:
        """(branch, node) of leaf `index` within the segment at `start`, lifted to the cached level.

        A partial last segment pairs its top node with itself on the way up,
        exactly as the full tree duplicates the last node of an odd level.
        """
        leaves = self._leaves_for(start, min(self._seg_len, length - start))
        branch, node = branch_and_root(leaves, index)
        while len(branch) < self._depth:
            branch.append(node)
            node = double_sha256(node + node)
        return branch, node

    def branch_and_root(self, length: int, index: int) -> tuple[list[bytes], bytes]:
        """(branch, root) for leaf `index` of the tree over the first `length` leaves."""
        if not 0 <= index < length:
            raise ValueError(f"index {index} out of range for {length} leaves")
        seg_len = self._seg_len
        if length <= seg_len:
            return branch_and_root(self._leaves_for(0, length), index)
        self._ensure(length)
        complete = length // seg_len
        seg = index // seg_len
        lower, node = self._segment(seg * seg_len, length, index - seg * seg_len)
        level = self._level[:complete]
        if complete * seg_len < length:
            last = node if seg == complete else self._segment(complete * seg_len, length, 0)[1]
            level.append(last)
        upper, root = branch_and_root(level, seg)
        return lower + upper, root
