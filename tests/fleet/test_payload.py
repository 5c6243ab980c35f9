"""The episode wire format: round trips, chunking, and a strict decoder fuzzed with hypothesis."""

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from armfarm.fleet.payload import (
    MAGIC,
    Chunk,
    PayloadError,
    assemble,
    content_digest,
    decode,
    encode,
    split,
    wire_arrays,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = ["float32", "float64", "float16", "int8", "int32", "int64", "uint8", "uint16", "bool"]


@st.composite
def episodes(draw):
    """Arrays by wire name and metadata of a random valid episode."""
    T = draw(st.integers(1, 20))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    obs = draw(hnp.arrays(dtype, (T + 1, *shape)))
    if draw(st.booleans()):
        obs = {"a": obs, "b": draw(hnp.arrays("float32", (T + 1, 2)))}
    arrays = wire_arrays(
        obs,
        draw(hnp.arrays("float32", (T, draw(st.integers(1, 4))))),
        draw(hnp.arrays("float32", (T,))),
        draw(hnp.arrays(bool, (T,))),
        draw(hnp.arrays(bool, (T,))),
        costs=draw(st.none() | hnp.arrays("float32", (T,), elements=st.floats(0, 10, width=32))),
        interventions=draw(st.none() | hnp.arrays("uint8", (T,))),
    )
    meta = {
        "episode_id": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")),
        "created_at": "2024-05-01T12:00:00+00:00",
        "policy_id": draw(st.text(max_size=10).filter(str.isprintable)),  # metadata must be printable
        "seed": draw(st.none() | st.integers(0, 2**64 - 1)),
    }
    return arrays, meta


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@FUZZ
@given(episodes())
def test_round_trip(episode):
    arrays, meta = episode
    payload = decode(encode(arrays, meta))
    assert payload.meta == {"env_id": "", "end_reason": "", **meta} and payload.chunk is None
    assert sorted(payload.arrays) == sorted(arrays)
    for name in arrays:
        same(payload.arrays[name], arrays[name])
    assert content_digest(payload.arrays, payload.meta) == content_digest(arrays, {"env_id": "", **meta})


@FUZZ
@given(episodes(), st.integers(1, 25))
def test_split_and_assemble(episode, max_steps):
    arrays, meta = episode
    whole = decode(encode(arrays, meta))
    chunks = [decode(body) for body in split(whole, max_steps)]
    assert [c.chunk for c in chunks] == [Chunk(i, i == len(chunks) - 1) for i in range(len(chunks))]
    assert all(1 <= c.steps <= max_steps for c in chunks)
    back = assemble(chunks)
    for name in arrays:
        same(back.arrays[name], arrays[name])
    if len(chunks) > 1:
        with pytest.raises(PayloadError, match="without gaps"):
            assemble(chunks[1:])
        with pytest.raises(PayloadError, match="last chunk must be final"):
            assemble(chunks[:-1])


def check_decoder(body: bytes) -> None:
    """The decoder's contract: a valid payload, or PayloadError; never anything else."""
    try:
        payload = decode(body)
    except PayloadError as e:
        assert str(e)
        return
    assert payload.steps >= 1
    assert payload.arrays["observations" if "observations" in payload.arrays else next(
        n for n in payload.arrays if n.startswith("observations."))].shape[0] >= payload.steps


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(body):
    check_decoder(body)
    check_decoder(MAGIC + body)


@FUZZ
@given(episodes(), st.data())
def test_fuzz_mutated_bodies(episode, data):
    body = bytearray(encode(*episode))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(body)))
        if kind == "flip" and at < len(body):
            body[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del body[at: at + data.draw(st.integers(1, 16))]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    check_decoder(bytes(body))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def headers(draw):
    """Headers close to valid ones, with any part replaced by arbitrary JSON."""
    shape = draw(st.lists(st.integers(-1, 4) | json_values, max_size=3))
    entry = {"name": draw(st.sampled_from(["observations", "actions", "rewards", "terminated", "x"]) | json_values),
             "dtype": draw(st.sampled_from(DTYPES) | json_values), "shape": shape}
    header = {"meta": draw(st.fixed_dictionaries({"episode_id": st.just("e1") | json_values,
                                                  "created_at": st.just("2024-05-01T12:00:00+00:00") | json_values},
                                                 optional={"seed": json_values, "extra": json_values})),
              "arrays": draw(st.lists(st.just(entry) | json_values, max_size=6))}
    if draw(st.booleans()):
        header["chunk"] = draw(st.fixed_dictionaries({"index": json_values, "final": json_values}) | json_values)
    return header


@FUZZ
@given(headers(), st.binary(max_size=200))
def test_fuzz_headers(header, data):
    head = json.dumps(header).encode()
    check_decoder(MAGIC + struct.pack("<I", len(head)) + head + data)


def test_header_length_lies():
    body = encode(*episode_arrays_and_meta())
    check = struct.unpack_from("<I", body, 8)[0]
    for length in (0, check - 1, check + 1, len(body), 2**32 - 1):
        with pytest.raises(PayloadError):
            decode(body[:8] + struct.pack("<I", length) + body[12:])


def test_duplicate_keys_and_bad_bools_are_refused():
    arrays, meta = episode_arrays_and_meta()
    body = encode(arrays, meta)
    head_len = struct.unpack_from("<I", body, 8)[0]
    head = body[12: 12 + head_len].replace(b'"meta":{', b'"meta":{"seed":1,', 1)
    with pytest.raises(PayloadError, match="duplicate key"):
        decode(MAGIC + struct.pack("<I", len(head)) + head + body[12 + head_len:])
    bad = bytearray(body)
    bad[-1] = 7  # the last byte is the last 'truncated' flag
    with pytest.raises(PayloadError, match="bool array"):
        decode(bytes(bad))


def episode_arrays_and_meta():
    T = 4
    arrays = wire_arrays(np.zeros((T + 1, 3), np.float32), np.zeros((T, 2), np.float32), np.zeros(T, np.float32),
                         np.zeros(T, bool), np.zeros(T, bool))
    return arrays, {"episode_id": "e1", "created_at": "2024-05-01T12:00:00+00:00", "seed": 3}


def test_robots_need_numpy_only():
    """The client and the codec import neither JAX nor Arrow nor the server."""
    import subprocess
    import sys

    code = ("import sys, armfarm.fleet.client, armfarm.fleet.payload; "
            "print(sorted(m for m in ('jax', 'pyarrow', 'fastapi', 'armfarm.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
