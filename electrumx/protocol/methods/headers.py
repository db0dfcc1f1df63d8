"""Block header methods: single headers, chunks, checkpoint proofs, the tip."""

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.protocol import costs
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods import params

MAX_CHUNK_SIZE = 2016
"""Most headers one `blockchain.block.headers` reply holds (one retarget period)."""


class HeaderMethods:
    """Handlers of `blockchain.block.*` and `blockchain.headers.subscribe`."""

    def __init__(self, reader, subscriptions):
        self.reader = reader
        self.subscriptions = subscriptions

    def _header(self, height: int) -> bytes:
        try:
            return self.reader.header(height)
        except ValueError:
            raise RPCError(BAD_REQUEST, f"height {height:,d} out of range") from None

    def _proof(self, height: int, cp_height: int) -> dict:
        """The branch and root proving block `height` against checkpoint `cp_height`."""
        tip = self.reader.height
        if not height <= cp_height <= tip:
            raise RPCError(BAD_REQUEST, f"require header height {height:,d} <= cp_height "
                                        f"{cp_height:,d} <= chain height {tip:,d}")
        branch, root = self.reader.header_branch(height, cp_height)
        return {"branch": [hash_to_hex_str(h) for h in branch], "root": hash_to_hex_str(root)}

    def subscribe(self, session):
        """The tip's {hex, height}; the session is then told of every new tip."""
        session.bump_cost(costs.HEADERS_SUBSCRIBE)
        return self.subscriptions.subscribe_headers(session)

    def block_header(self, session, height, cp_height=0):
        height = params.non_negative_int(height, "height")
        cp_height = params.non_negative_int(cp_height, "cp_height")
        session.bump_cost(costs.HEADER + costs.HEADER_PROOF if cp_height else costs.HEADER)
        raw_hex = self._header(height).hex()
        if not cp_height:
            return raw_hex
        return {"header": raw_hex, **self._proof(height, cp_height)}

    def _chunk(self, session, start_height, count, cp_height):
        """(headers as a list of raw bytes, result dict without them)."""
        start_height = params.non_negative_int(start_height, "start_height")
        count = min(params.non_negative_int(count, "count"), MAX_CHUNK_SIZE)
        cp_height = params.non_negative_int(cp_height, "cp_height")
        raw = self.reader.headers(start_height, count)
        size = self.reader.header_len
        headers = [raw[i:i + size] for i in range(0, len(raw), size)]
        result = {"count": len(headers), "max": MAX_CHUNK_SIZE}
        cost = costs.header_chunk(count)
        if headers and cp_height:
            cost += costs.HEADER_PROOF
            result.update(self._proof(start_height + len(headers) - 1, cp_height))
        session.bump_cost(cost)
        return headers, result

    def block_headers(self, session, start_height, count, cp_height=0):
        """Protocol 1.4 to 1.5: the headers concatenated in one hex string."""
        headers, result = self._chunk(session, start_height, count, cp_height)
        result["hex"] = b"".join(headers).hex()
        return result

    def block_headers_list(self, session, start_height, count, cp_height=0):
        """Protocol 1.6: the headers as a list of hex strings."""
        headers, result = self._chunk(session, start_height, count, cp_height)
        result["headers"] = [header.hex() for header in headers]
        return result
