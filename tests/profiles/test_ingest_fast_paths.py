"""The per-row shortcuts of the customer import (issue 21 item 2) give the reference bytes and digests:
a data key's cached AES-GCM object and AAD prefix against ``config.envelope``'s one-call functions, and the
e-mail digest of an already normalized address against normalizing it again."""

from __future__ import annotations

import random
import uuid

import pytest

from config import blind_index, envelope
from profiles.data_keys import DataKey
from profiles.services.validation import clean_personal, normalized_strong_digest, strong_digest

FIELDS = ("name", "email", "phone", "address", "attr_segment", "placeholder_state", "source:crm", "text:ticket:ab")


def test_data_key_field_crypto_is_the_envelope_s() -> None:
    rng = random.Random(7)
    for version in (1, 2, 7):
        key = DataKey(uuid.uuid4(), envelope.new_data_key(), version)
        for field in FIELDS:
            value = "".join(rng.choice("abcé ł\n😀") for _ in range(rng.randrange(0, 40)))
            aad = envelope.field_aad(customer_id=key.customer_id, field=field, key_version=version)
            assert key.field_aad(field) == aad
            assert key.field_aad(field, 3) == envelope.field_aad(customer_id=key.customer_id, field=field,
                                                                 key_version=3)
            blob = key.encrypt_field(field, value)
            assert envelope.decrypt_text(key.dek, blob, aad) == value  # what the reference reads
            assert key.decrypt_field(field, envelope.encrypt_text(key.dek, value, aad), version) == value
            assert key.decrypt_field(field, memoryview(blob), version) == value
            with pytest.raises(envelope.DecryptionError):
                key.decrypt_field(field, blob, version + 1)  # AAD bound to the key version
            with pytest.raises(envelope.DecryptionError):
                key.decrypt_field(field, blob[:-1] + bytes([blob[-1] ^ 1]), version)
    short = DataKey(uuid.uuid4(), b"k" * 16, 1)  # a 16-byte key is refused, as envelope.decrypt refuses it
    with pytest.raises(envelope.DecryptionError):
        short.decrypt_field("name", envelope.encrypt(b"k" * 16, b"x", short.field_aad("name")), 1)
    with pytest.raises(envelope.DecryptionError):
        envelope.decrypt(b"k" * 16, envelope.encrypt(b"k" * 16, b"x", b"a"), b"a")


@pytest.mark.parametrize("raw", [
    "Anna@Example.com", "  anna.berg+tag@example.co.uk ", "ÅSA@exämple.se", "ＡＢＣ@ｅｘａｍｐｌｅ.com",
    "user@xn--exmple-cua.se", "x@bücher.de", "İstanbul@example.com", "a@b.c", "o'neil@example.ie",
])
def test_email_digest_of_a_normalized_address_is_the_reference_digest(raw: str) -> None:
    values = clean_personal({"email": raw}, "GB")
    normalized = values["email"]
    assert normalized_strong_digest("email", normalized, "GB") == strong_digest("email", normalized, "GB")
    assert normalized_strong_digest("email", normalized, "GB") == blind_index.email_index(raw)
