"""Encryption, blind-index and key-rotation properties (Art. 32)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import blind_index, envelope
from config.envelope import DecryptionError
from profiles import data_keys, selectors, services
from profiles.data_keys import DataKey
from profiles.models import BlindIndexEntry, CustomerKey, PersonalField
from tests.factories import make_customer

FIELDS = ("name", "email", "phone", "address", "company", "job_title", "date_of_birth")


def db_examples(n: int) -> hsettings:
    return hsettings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=n,
                     database=None)

texts = st.text(min_size=0, max_size=300)


def _key() -> DataKey:
    return DataKey(uuid.uuid4(), envelope.new_data_key(), 1)


@given(value=texts, field=st.sampled_from(FIELDS))
@hsettings(deadline=None, max_examples=200, database=None)
def test_field_encryption_round_trips(value: str, field: str) -> None:
    key = _key()
    blob = key.encrypt_field(field, value)
    assert key.decrypt_field(field, blob, 1) == value
    assert len(value.encode()) < 8 or value.encode() not in blob  # (short strings may occur by chance)


@given(value=texts, position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
@hsettings(deadline=None, max_examples=300, database=None)
def test_every_tampered_ciphertext_fails_with_the_generic_error(value: str, position: int, flip: int) -> None:
    key = _key()
    blob = bytearray(key.encrypt_field("name", value))
    blob[position % len(blob)] ^= flip
    with pytest.raises(DecryptionError) as info:
        key.decrypt_field("name", bytes(blob), 1)
    assert str(info.value) == "decryption failed"


@given(value=texts, cut=st.integers(min_value=1, max_value=40))
@hsettings(deadline=None, max_examples=100, database=None)
def test_every_truncated_ciphertext_fails(value: str, cut: int) -> None:
    key = _key()
    blob = key.encrypt_field("email", value)
    with pytest.raises(DecryptionError):
        key.decrypt_field("email", blob[:-cut], 1)


@given(value=texts, field=st.sampled_from(FIELDS), other=st.sampled_from(FIELDS))
@hsettings(deadline=None, max_examples=200, database=None)
def test_every_ciphertext_moved_to_another_customer_or_field_fails(value: str, field: str, other: str) -> None:
    key = _key()
    blob = key.encrypt_field(field, value)
    same_key_other_customer = DataKey(uuid.uuid4(), key.dek, 1)
    with pytest.raises(DecryptionError):
        same_key_other_customer.decrypt_field(field, blob, 1)
    if other != field:
        with pytest.raises(DecryptionError):
            key.decrypt_field(other, blob, 1)
    with pytest.raises(DecryptionError):
        key.decrypt_field(field, blob, 2)  # another key version


@given(value=texts)
@hsettings(deadline=None, max_examples=200, database=None)
def test_every_wrong_key_decryption_fails(value: str) -> None:
    key = _key()
    blob = key.encrypt_field("phone", value)
    wrong = DataKey(key.customer_id, envelope.new_data_key(), 1)
    with pytest.raises(DecryptionError):
        wrong.decrypt_field("phone", blob, 1)


@pytest.mark.django_db
def test_stored_field_copied_to_another_customer_row_fails_to_decrypt() -> None:
    a = make_customer(name="Ada Lovelace", email="ada.copy@example.com", phone="")
    b = make_customer(name="Bob Builder", email="bob.copy@example.com", phone="")
    a_name = PersonalField.objects.get(customer_id=a, field="name")
    PersonalField.objects.filter(customer_id=b, field="name").update(ciphertext=a_name.ciphertext)
    PersonalField.objects.filter(customer_id=a, field="email").update(ciphertext=a_name.ciphertext)
    with pytest.raises(DecryptionError):
        selectors.customer_personal_data(customer_id=b)
    with pytest.raises(DecryptionError):
        selectors.customer_personal_data(customer_id=a)


email_locals = st.from_regex(r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True)
domains = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|org|pl|fi|nl|se)", fullmatch=True)
spaces = st.text(alphabet=" \t\n", max_size=3)


@pytest.mark.django_db
@given(local=email_locals, domain=domains, lead=spaces, trail=spaces, upper=st.lists(st.booleans(), min_size=40,
                                                                                       max_size=40))
@db_examples(25)
def test_blind_index_email_lookup_survives_case_and_whitespace(local: str, domain: str, lead: str, trail: str,
                                                               upper: list[bool]) -> None:
    email = f"{local}@{domain}"
    cid = selectors.customer_find(email=email) or make_customer(email=email, phone="", name="")
    variant = "".join(c.upper() if upper[i % 40] else c for i, c in enumerate(email))
    assert selectors.customer_find(email=f"{lead}{variant}{trail}") == cid
    assert blind_index.email_index(f"{lead}{variant}{trail}") == blind_index.email_index(email)


@pytest.mark.django_db
@given(number=st.integers(min_value=0, max_value=99_999), style=st.sampled_from(
    ["+44 7700 9{0}", "+447700 9{0}", "07700 9{0}", " +44 (0)7700-9{0} ", "0044 7700 9{0}"]))
@db_examples(25)
def test_blind_index_phone_lookup_survives_formatting_variants(number: int, style: str) -> None:
    digits = f"{number:05d}"
    canonical = f"+4477009{digits}"
    cid = selectors.customer_find(phone=canonical) or make_customer(phone=canonical, email="", name="")
    spaced = f"{digits[:2]} {digits[2:]}"
    assert selectors.customer_find(phone=style.format(spaced)) == cid


@pytest.mark.django_db
def test_blind_index_is_keyed_and_no_plaintext_identifier_is_stored() -> None:
    cid = make_customer(email="keyed.index@example.com", phone="+447700900111", name="Kay Index")
    digests = set(BlindIndexEntry.objects.filter(customer_id=cid).values_list("digest", flat=True))
    assert blind_index.email_index("keyed.index@example.com") in digests
    import hashlib

    assert hashlib.sha256(b"keyed.index@example.com").hexdigest() not in digests


@pytest.mark.django_db
def test_dek_cache_never_serves_an_erased_customers_key() -> None:
    cid = make_customer(name="Cache Erased", email="cache.erased@example.com")
    data_keys.key_get(cid)  # now cached
    CustomerKey.objects.filter(customer_id=cid).delete()  # as another process erasing would
    with pytest.raises(DecryptionError):
        data_keys.key_get(cid)


personal_values = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=40).filter(str.strip),
     "company": st.text(min_size=1, max_size=40).filter(str.strip),
     "job_title": st.text(min_size=1, max_size=40).filter(str.strip)}
)


@pytest.mark.django_db
@given(people=st.lists(personal_values, min_size=1, max_size=4), batch=st.integers(min_value=1, max_value=3))
@db_examples(12)
def test_key_rotation_loses_nothing(people: list[dict], batch: int) -> None:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(KEK_ACTIVE_ID="test1"):
        created = [make_customer(personal=person, name=person["name"]) for person in people]
        before = {cid: selectors.customer_personal_data(customer_id=cid) for cid in created}
        sealed = {cid: services.customer_seal(customer_id=cid, label="t", payload={"x": 1}) for cid in created}
    assert set(CustomerKey.objects.filter(customer_id__in=created).values_list("kek_id", flat=True)) == {"test1"}
    data_keys.cache_clear()

    with override_settings(KEK_ACTIVE_ID="test2"):
        result = services.keys_rotate(actor="cli", batch_size=batch)
    assert result.remaining == 0
    assert result.rotated >= len(created)
    assert set(CustomerKey.objects.values_list("kek_id", flat=True)) == {"test2"}

    data_keys.cache_clear()
    # The old KEK is withdrawn: everything still opens under the new one, identically.
    with override_settings(KEK_ACTIVE_ID="test2", KEK_KEYS={"test2": settings.KEK_KEYS["test2"]}):
        for cid in created:
            assert selectors.customer_personal_data(customer_id=cid) == before[cid]
            assert selectors.customer_unseal(customer_id=cid, label="t", blob=sealed[cid]) == {"x": 1}


@pytest.mark.django_db
def test_rotate_keys_command_rewraps_in_batches_and_records_governance(settings, governance, capsys) -> None:
    from django.core.management import call_command

    settings.KEK_ACTIVE_ID = "test1"
    ids = [make_customer() for _ in range(3)]
    settings.KEK_ACTIVE_ID = "test2"

    call_command("rotate_keys", "--dry-run")
    assert "3 data keys to re-wrap under test2" in capsys.readouterr().out
    assert set(CustomerKey.objects.filter(customer_id__in=ids).values_list("kek_id", flat=True)) == {"test1"}
    assert governance("keys.rotated") == []

    call_command("rotate_keys", "--batch-size", "2")
    assert "re-wrapped 3 data keys under test2; 0 remaining" in capsys.readouterr().out
    assert set(CustomerKey.objects.filter(customer_id__in=ids).values_list("kek_id", flat=True)) == {"test2"}
    [event] = governance("keys.rotated")
    assert event.details == {"kek_id": "test2", "rotated": 3, "remaining": 0, "imports": 0}


@pytest.mark.django_db
def test_seal_many_matches_single_sealing_and_leaves_out_erased_customers():
    from profiles import selectors, services
    from tests.factories import make_customer

    kept, erased = make_customer(), make_customer()
    services.customer_erase(customer_id=erased, actor="test")
    sealed = services.customer_seal_many(
        items=[(kept, "decision", {"features": {"orders_90d": 7}}), (erased, "decision", {"x": 1})]
    )
    assert set(sealed) == {kept}
    assert selectors.customer_unseal(customer_id=kept, label="decision", blob=sealed[kept]) == {
        "features": {"orders_90d": 7}
    }
