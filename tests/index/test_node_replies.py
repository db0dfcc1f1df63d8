"""What a node's reply means: a result, the node's error (an answer), or no answer at all."""

import pytest

from electrumx.index.node_replies import (MISC_ERROR, WARMUP, NodeUnavailable, as_block_hash,
                                          as_height, batch_items, checked, result_of,
                                          single_result, warm_up_message)
from electrumx.interfaces import DaemonError

HASH = "ab" * 32


def test_a_result_an_error_or_neither():
    assert single_result({"result": 7, "error": None, "id": 1}, "getblockcount") == 7
    assert single_result({"result": None, "error": None, "id": 1}, "x") is None
    with pytest.raises(DaemonError) as e:
        single_result({"result": None, "error": {"code": -5, "message": "No such tx"}}, "x")
    assert (e.value.code, e.value.message) == (-5, "No such tx")
    with pytest.raises(NodeUnavailable):
        single_result({"error": None, "id": 1}, "x")
    with pytest.raises(NodeUnavailable):
        single_result([{"result": 7}], "x")


@pytest.mark.parametrize("error,message", [
    ({"code": "five", "message": "odd"}, "odd"), ({"message": "no code"}, "no code"),
    ("a bare string", "a bare string")])
def test_an_error_without_an_integer_code_is_a_misc_error(error, message):
    with pytest.raises(DaemonError) as e:
        result_of({"result": None, "error": error}, "x")
    assert (e.value.code, e.value.message) == (MISC_ERROR, message)


def test_batch_items_come_in_request_order_and_all_must_be_there():
    reply = [{"id": 11, "result": "b"}, {"id": 10, "result": "a"}]
    assert [item["result"] for item in batch_items(reply, 10, 2, "x")] == ["a", "b"]
    for wrong in [reply[:1], {"id": 10}, [{"id": 10}, {"id": 12}], [{"id": 10}, {"id": "11"}]]:
        with pytest.raises(NodeUnavailable):
            batch_items(wrong, 10, 2, "x")


def test_a_result_the_conversion_refuses_is_no_answer():
    assert checked(9, as_height, "getblockcount") == 9
    assert checked(HASH, as_block_hash, "getblockhash") == HASH
    assert checked("anything", None, "x") == "anything"
    for result, convert in [("nine", as_height), (-1, as_height), (True, as_height),
                            ("ab" * 31, as_block_hash), ("zz" * 32, as_block_hash),
                            (5, as_block_hash), ("0g", bytes.fromhex)]:
        with pytest.raises(NodeUnavailable):
            checked(result, convert, "x")


def test_a_warming_node_is_seen_in_a_single_reply_or_any_batch_item():
    warming = {"result": None, "error": {"code": WARMUP, "message": "Loading block index..."}}
    assert warm_up_message(warming) == "Loading block index..."
    assert warm_up_message([{"result": 1, "id": 1}, warming]) == "Loading block index..."
    assert warm_up_message({"result": None, "error": {"code": -5, "message": "x"}}) is None
    assert warm_up_message("garbage") is None
