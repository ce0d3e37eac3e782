"""The canonical body built around a payload's text equals canonical_json of the whole body,
whatever the envelope and payload hold (the hash of every received event depends on it)."""

from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.events import Event, canonical_body, canonical_json, payload_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() |
    st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(id=st.text(), origin=st.text(), seq=st.integers(min_value=1), hlc=st.text(),
       type=st.text(), version=st.integers(), prev_hash=st.text(),
       payload=st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_body_equals_canonical_json_of_the_body(id, origin, seq, hlc, type, version,
                                                          prev_hash, payload):
    event = Event(id=id, origin=origin, seq=seq, hlc=hlc, type=type, version=version,
                  payload=payload, prev_hash=prev_hash)
    assert canonical_body(event, payload_json(payload)) == canonical_json(event.body())


def test_text_outside_ascii_and_quotes_are_kept_as_the_hash_saw_them():
    event = Event(id="01", origin='a"b\\c', seq=1, hlc="h", type="T", version=1,
                  payload={"full_name": "Oʻrinboyeva Gulnoza", "q": "«»\n"}, prev_hash="0")
    assert canonical_body(event, payload_json(event.payload)) == canonical_json(event.body())
