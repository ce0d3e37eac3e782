"""The sync wire format: bodies, gzip, validation, byte-bounded batches."""

import gzip
import json

import pytest

from sync_protocol.wire import (
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    MIN_BATCH_BYTES,
    AdaptiveBatch,
    BadField,
    BodyTooLarge,
    EventResult,
    MalformedBody,
    PulledEvent,
    PullQuery,
    PullResponse,
    PushRequest,
    PushResponse,
    WireError,
    decode_body,
    encode_body,
    json_size,
    split_batches,
)


def fake_events(count, size=300):
    return [{"id": f"E{i:05d}", "pad": "x" * size} for i in range(count)]


def test_push_round_trip():
    request = PushRequest("tas-clinic-0001", fake_events(3))
    assert PushRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    response = PushResponse([EventResult("E1", "accepted"),
                             EventResult("E2", "refused", "seq_gap", "send 2 first")], 7, 99)
    assert PushResponse.from_dict(response.to_dict()) == response


def test_pull_round_trip_keeps_unknown_fields():
    page = PullResponse([PulledEvent(5, {"id": "E5"})], 9, 12, True)
    data = {**page.to_dict(), "hint": "newer hub"}
    again = PullResponse.from_dict(data)
    assert (again.events, again.next, again.head, again.more) == (page.events, 9, 12, True)
    assert again.extra == {"hint": "newer hub"}


@pytest.mark.parametrize("data, field", [
    ([], "body"),
    ({"events": []}, "node_id"),
    ({"node_id": "", "events": []}, "node_id"),
    ({"node_id": "n1", "events": {}}, "events"),
    ({"node_id": "n1", "events": [{}] * (MAX_BATCH_EVENTS + 1)}, "events"),
])
def test_bad_push_requests_name_the_field(data, field):
    with pytest.raises(BadField) as caught:
        PushRequest.from_dict(data)
    assert caught.value.field == field


def test_a_push_request_leaves_single_events_to_the_hub():
    """Items are not judged here: the hub answers each one (one bad event blocks nothing)."""
    request = PushRequest.from_dict({"node_id": "n1", "events": [1, "x", {}]})
    assert request.events == [1, "x", {}]


@pytest.mark.parametrize("status, code", [("maybe", None), ("refused", None)])
def test_event_results_are_checked(status, code):
    with pytest.raises(BadField):
        EventResult("E1", status, code)


@pytest.mark.parametrize("params, field", [
    ({"after": "-1"}, "after"),
    ({"after": "1e3"}, "after"),
    ({"limit": "0"}, "limit"),
    ({"limit": str(MAX_BATCH_EVENTS + 1)}, "limit"),
    ({"max_bytes": "10"}, "max_bytes"),
    ({"facility_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "facility_id"),
])
def test_bad_pull_queries_name_the_parameter(params, field):
    with pytest.raises(BadField) as caught:
        PullQuery.from_params(params)
    assert caught.value.field == field


def test_pull_query_defaults_and_signable_form():
    query = PullQuery.from_params({"after": "42"})
    assert query == PullQuery(42)
    assert query.to_query_string() == "after=42&limit=1000&max_bytes=524288"
    assert PullQuery.from_params(dict(p.split("=") for p in
                                      query.to_query_string().split("&"))) == query


@pytest.mark.parametrize("compress", [True, False])
def test_bodies_round_trip_with_and_without_gzip(compress):
    value = {"node_id": "n1", "events": fake_events(20)}
    body, headers = encode_body(value, compress=compress)
    assert (headers.get("Content-Encoding") == "gzip") is compress
    assert decode_body(body, headers.get("Content-Encoding")) == value


def test_small_bodies_are_not_compressed():
    _body, headers = encode_body({"node_id": "n1", "events": []})
    assert "Content-Encoding" not in headers


def test_a_gzip_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY_BYTES * 4) + b"]")
    assert len(bomb) < MAX_BODY_BYTES // 100
    with pytest.raises(BodyTooLarge):
        decode_body(bomb, "gzip")


@pytest.mark.parametrize("body, encoding, error", [
    (b"{not json", None, MalformedBody),
    (b"\xff\xfe", None, MalformedBody),
    (b"not gzip at all", "gzip", MalformedBody),
    (gzip.compress(b"{}")[:-6], "gzip", MalformedBody),
    (b"{}", "br", WireError),
    (b" " * (MAX_BODY_BYTES + 1), None, BodyTooLarge),
])
def test_bad_bodies_get_clear_errors(body, encoding, error):
    with pytest.raises(error) as caught:
        decode_body(body, encoding)
    assert caught.value.text


@pytest.mark.parametrize("max_bytes, max_events", [(2000, 1000), (100_000, 7), (10, 3)])
def test_batches_keep_order_and_bounds(max_bytes, max_events):
    events = fake_events(100)
    batches = list(split_batches(events, max_bytes=max_bytes, max_events=max_events))
    assert [e for batch in batches for e in batch] == events
    for batch in batches:
        assert 1 <= len(batch) <= max_events
        if len(batch) > 1:
            assert sum(json_size(e) + 1 for e in batch) <= max_bytes


def test_a_too_large_event_travels_alone():
    events = fake_events(1, size=5000) + fake_events(2)
    batches = list(split_batches(events, max_bytes=1000))
    assert [len(b) for b in batches] == [1, 2]


def test_adaptive_batch_halves_on_413_and_grows_back_slowly():
    batch = AdaptiveBatch()
    start = (batch.max_bytes, batch.max_events)
    assert batch.shrink()
    assert (batch.max_bytes, batch.max_events) == (start[0] // 2, start[1] // 2)
    while batch.shrink():
        pass
    assert (batch.max_bytes, batch.max_events) == (MIN_BATCH_BYTES, 1)
    for _ in range(AdaptiveBatch.GROW_AFTER - 1):
        batch.succeeded()
    assert batch.max_events == 1
    batch.succeeded()
    assert (batch.max_bytes, batch.max_events) == (2 * MIN_BATCH_BYTES, 2)
    for _ in range(100):
        batch.succeeded()
    assert (batch.max_bytes, batch.max_events) == start
