"""Envelope encryption and blind-index primitives (the per-customer layer is tested in tests/profiles)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import blind_index, envelope


@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64))
@hsettings(max_examples=100, deadline=None)
def test_round_trip_and_any_single_bit_flip_fails(plaintext, aad):
    key = envelope.new_data_key()
    blob = envelope.encrypt(key, plaintext, aad)
    assert envelope.decrypt(key, blob, aad) == plaintext
    for position in range(0, len(blob), max(1, len(blob) // 8)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(envelope.DecryptionError) as excinfo:
            envelope.decrypt(key, bytes(tampered), aad)
        assert str(excinfo.value) == "decryption failed"


def test_wrong_key_and_wrong_context_fail_generically():
    key = envelope.new_data_key()
    blob = envelope.encrypt_text(key, "Jane Doe", b"field|a|name|1")
    with pytest.raises(envelope.DecryptionError):
        envelope.decrypt_text(envelope.new_data_key(), blob, b"field|a|name|1")
    with pytest.raises(envelope.DecryptionError):
        envelope.decrypt_text(key, blob, b"field|b|name|1")


def test_data_keys_wrap_under_the_active_kek_and_unwrap_under_any_listed_kek(settings):
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id="c1")
    assert wrapped.kek_id == settings.KEK_ACTIVE_ID
    assert envelope.unwrap_data_key(wrapped, customer_id="c1") == dek
    old = envelope.wrap_data_key(dek, customer_id="c1", kek_id="test1")
    assert envelope.unwrap_data_key(old, customer_id="c1") == dek
    with pytest.raises(envelope.DecryptionError):
        envelope.unwrap_data_key(wrapped, customer_id="c2")
    with pytest.raises(envelope.DecryptionError):
        envelope.unwrap_data_key(envelope.WrappedKey("gone", wrapped.wrapped), customer_id="c1")


@given(
    local=st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    domain=st.from_regex(r"[a-z]{2,10}\.(com|org|de|pl)", fullmatch=True),
    upper=st.booleans(),
    pad=st.sampled_from(["", " ", "  ", "\t"]),
)
def test_email_index_survives_case_and_whitespace_variants(local, domain, upper, pad):
    email = f"{local}@{domain}"
    variant = pad + (email.upper() if upper else email) + pad
    assert blind_index.email_index(variant) == blind_index.email_index(email)


def test_phone_index_normalizes_to_e164():
    assert blind_index.normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert blind_index.phone_index("+44 20 7946 0958") == blind_index.phone_index("(020) 7946-0958", "GB")


def test_indexes_are_domain_separated_and_keyed(settings):
    assert blind_index.blind_index("email", "a@b.cd") != blind_index.blind_index("phone", "a@b.cd")
    first = blind_index.email_index("a@b.cd")
    settings.BLIND_INDEX_KEY = b"another-key-another-key-another!!"
    assert blind_index.email_index("a@b.cd") != first


def test_invalid_identifiers_raise_without_echoing_the_value():
    with pytest.raises(blind_index.InvalidIdentifier) as excinfo:
        blind_index.normalize_email("canary-not-an-email")
    assert "canary" not in str(excinfo.value)
