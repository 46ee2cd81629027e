"""Compact EdDSA JWS, key rings and record signatures, without any node (idcore/jws.py,
idcore/keys.py, idcore/signing.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from idcore import jws
from idcore.errors import InvalidValue
from idcore.keys import KeyRing, fingerprint, key_from_jwk, kid_of, public_jwk
from idcore.signing import (
    SIGNATURE_INDEX,
    Signer,
    digest_input,
    digest_problems,
    parse_signature,
    strip_signatures,
    value_digest,
)
from idcore.store import Record

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
PAYLOAD = {"iss": "furniture", "sub": "88.168.1/X", "digests": [{"index": 1, "sha256": "a"}]}


def _swap_part(token: str, position: int, text: str) -> str:
    parts = token.split(".")
    parts[position] = text
    return ".".join(parts)


# -- the JWS --------------------------------------------------------------------------------


def test_sign_then_verify_round_trips_header_and_payload() -> None:
    token = jws.sign(PAYLOAD, KEY, "k1")
    assert token.count(".") == 2 and "=" not in token
    parsed = jws.parse(token)
    assert parsed.header == {"alg": "EdDSA", "kid": "k1"} and parsed.kid == "k1"
    assert jws.verify(token, KEY.public_key()) == PAYLOAD


def test_a_changed_payload_fails_the_signature() -> None:
    token = jws.sign(PAYLOAD, KEY, "k1")
    forged = {**PAYLOAD, "sub": "88.168.1/Y"}
    tampered = _swap_part(token, 1, jws.b64url(jws.canonical(forged)))
    with pytest.raises(jws.BadSignature, match="k1"):
        jws.verify(tampered, KEY.public_key())


def test_another_key_does_not_verify() -> None:
    with pytest.raises(jws.BadSignature):
        jws.verify(jws.sign(PAYLOAD, KEY, "k1"), OTHER.public_key())


def test_a_kid_swapped_in_the_header_breaks_the_signature() -> None:
    # The header is signed too: pointing the token at another key id is tampering.
    token = jws.sign(PAYLOAD, KEY, "k1")
    header = jws.b64url(jws.canonical({"alg": "EdDSA", "kid": "k2"}))
    relabelled = _swap_part(token, 0, header)
    assert jws.parse(relabelled).kid == "k2"
    with pytest.raises(jws.BadSignature):
        jws.verify(relabelled, KEY.public_key())


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "not base64!.e30.AAAA",
        "e30.e30." + jws.b64url(b"x" * 64),  # no alg
        jws.b64url(b'{"alg":"none"}') + ".e30.",
        jws.b64url(b'{"alg":"HS256"}') + ".e30." + jws.b64url(b"x" * 64),
        jws.b64url(b'{"alg":"EdDSA","crit":["x"]}') + ".e30." + jws.b64url(b"x" * 64),
        jws.b64url(b'{"alg":"EdDSA"}') + ".e30." + jws.b64url(b"x" * 12),
        jws.b64url(b'{"alg":"EdDSA"}') + "." + jws.b64url(b"[1]") + "." + jws.b64url(b"x" * 64),
    ],
)
def test_malformed_tokens_and_other_algorithms_are_refused(token: str) -> None:
    with pytest.raises(jws.JWSError):
        jws.parse(token)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert jws.canonical({"b": 1, "a": "é"}) == jws.canonical({"a": "é", "b": 1})
    assert jws.canonical({"a": "é"}) == b'{"a":"\\u00e9"}'


# -- keys ------------------------------------------------------------------------------------


def test_a_ring_is_created_once_with_private_files_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    ring = KeyRing.open(tmp_path, "timber")
    pem = tmp_path / "timber" / f"ed25519-{ring.current.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert KeyRing.open(tmp_path, "timber").current.kid == ring.current.kid
    public = json.loads((tmp_path / "timber" / "public.json").read_text())
    assert [k["kid"] for k in public["keys"]] == [ring.current.kid]
    with pytest.raises(FileNotFoundError):
        KeyRing.open(tmp_path, "nobody", create=False)


def test_the_kid_is_the_start_of_the_fingerprint_and_jwks_round_trip() -> None:
    public = KEY.public_key()
    assert fingerprint(public).startswith("SHA256:" + kid_of(public))
    assert len(kid_of(public)) == 16
    jwk = public_jwk(public)
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == kid_of(public)
    assert kid_of(key_from_jwk(jwk)) == jwk["kid"]
    with pytest.raises(ValueError, match="kid"):
        key_from_jwk({**jwk, "kid": kid_of(OTHER.public_key())})
    with pytest.raises(ValueError):
        key_from_jwk({**jwk, "crv": "P-256"})


def test_rotation_keeps_the_old_key_as_retired(tmp_path: Path) -> None:
    first = KeyRing.open(tmp_path, "timber")
    second = first.rotate()
    assert second.current.kid != first.current.kid
    assert [k.kid for k in second.retired] == [first.current.kid]
    assert [j["status"] for j in second.public_jwks()] == ["current", "retired"]
    assert KeyRing.open(tmp_path, "timber").kids() == second.kids()


# -- record signatures -----------------------------------------------------------------------


def _value(index: int, vtype: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": {"format": "string", "value": text}, **extra}


RECORD = Record(
    "88.168.1/DESK-1",
    [
        _value(1, "URL", "https://example.test/desk"),
        _value(300, "HS_SECKEY", "(hash)", permissions="1100"),
        _value(2000, "name", "desk"),
    ],
)


def test_a_signer_adds_hs_signature_at_400_over_every_other_value(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168", clock=lambda: 7)
    signed = signer(RECORD)
    signature = next(v for v in signed.values if v["index"] == SIGNATURE_INDEX)
    token = parse_signature(signature)
    assert token.kid == signer.ring.current.kid
    payload = token.payload
    assert (payload["iss"], payload["sub"], payload["prefix"], payload["iat"]) == (
        "furniture",
        "88.168.1/DESK-1",
        "88.168",
        7,
    )
    assert [(d["index"], d["type"]) for d in payload["digests"]] == [
        (1, "URL"),
        (300, "HS_SECKEY"),
        (2000, "name"),
    ]
    assert payload["digests"][1]["hidden"] is True
    token.verify(signer.ring.current.public)
    assert digest_problems(payload, signed.values) == []
    # Signing again replaces the signature rather than adding one.
    assert [v["index"] for v in signer(signed).values].count(SIGNATURE_INDEX) == 1


def test_digest_problems_name_changed_added_and_missing_values(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168")
    signed = signer(RECORD)
    payload = parse_signature(next(v for v in signed.values if v["index"] == 400)).payload
    public = [v for v in signed.values if v["type"] != "HS_SECKEY"]  # what a reader sees
    assert digest_problems(payload, public) == []
    changed = [
        {**v, "data": {"format": "string", "value": "x"}} if v["index"] == 2000 else v
        for v in public
    ]
    added = [*public, _value(7, "DESC", "new")]
    missing = [v for v in public if v["index"] != 1]
    assert digest_problems(payload, changed) == ["value 2000 (name) differs from what was signed"]
    assert digest_problems(payload, added) == ["value 7 (DESC) is not covered by the signature"]
    assert digest_problems(payload, missing) == ["value 1 (URL) was signed but is missing"]
    # Only index, type and data count: a new timestamp or TTL changes no digest.
    assert value_digest({**public[0], "ttl": 5, "timestamp": "x"}) == value_digest(public[0])


@pytest.mark.parametrize(
    "value",
    [
        _value(1, "URL", 'https://x.test/"quoted"\\ é 中 \U0001f600 \x00'),
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"index": 3}}},
        {"index": 7, "type": "DESC", "data": {"format": "string", "value": "x", "extra": 1}},
    ],
)
def test_the_digest_input_is_the_canonical_json(value: dict[str, Any]) -> None:
    content = {"index": value["index"], "type": value["type"], "data": value["data"]}
    assert digest_input(value) == jws.canonical(content)


def test_index_400_is_reserved_and_client_signatures_are_dropped(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "furniture", issuer="furniture", prefix="88.168")
    with pytest.raises(InvalidValue, match="reserved"):
        signer(Record("88.168.1/X", [_value(400, "URL", "https://x.test")]))
    sent = [_value(1, "URL", "u"), _value(400, "HS_SIGNATURE", "old.jws.value")]
    assert strip_signatures(sent) == [sent[0]]
    assert strip_signatures("not a list") == "not a list"


def test_the_anchor_record_is_counter_signed_by_retired_keys(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "cq-top", issuer="cq-top", prefix="88", anchor_handle="0.NA/88")
    old = signer.ring.current.kid
    signer.rotate()
    anchor = signer(Record("0.NA/88", [_value(2, "DESC", "top")]))
    kids = [parse_signature(v).kid for v in anchor.values if v["type"] == "HS_SIGNATURE"]
    assert kids == [signer.ring.current.kid, old]
    other = signer(Record("0.NA/88.168", [_value(2, "DESC", "furniture")]))
    assert [v["index"] for v in other.values if v["type"] == "HS_SIGNATURE"] == [400]


def test_a_signer_follows_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    signer = Signer(tmp_path, "timber", issuer="timber", prefix="88.169")
    rotated = KeyRing.open(tmp_path, "timber").rotate()  # e.g. another gunicorn worker
    assert signer.ring.current.kid == rotated.current.kid
