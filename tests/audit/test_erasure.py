"""After erasure a customer's decision records keep only the pseudonym and the decision facts: the
sealed inputs and explanation no longer decrypt, nothing was updated, and the chain still verifies."""

from __future__ import annotations

import pytest
from django.db import connection

from audit import services
from audit.models import RECORD_TYPES, DecisionRecord
from audit.services import DECISION_DETAILS_LABEL
from audit.verify import verify_chain
from config.envelope import DecryptionError

pytestmark = pytest.mark.django_db


def _audit_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for model in RECORD_TYPES.values():
            columns = [f.column for f in model._meta.concrete_fields if f.get_internal_type() != "BinaryField"]
            cursor.execute(f"SELECT {', '.join(columns)} FROM {model._meta.db_table}")  # noqa: S608
            chunks.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(chunks).lower()


def test_erasure_crypto_shreds_decision_details_and_the_chain_still_verifies(sealed_decision, customer, make_decision):
    from profiles.selectors import customer_unseal
    from profiles.services import customer_erase

    other = make_decision()
    services.chain_seal()
    services.checkpoint_write(force=True)
    before = DecisionRecord.objects.get(pk=sealed_decision.pk)
    assert customer_unseal(customer_id=customer, label=DECISION_DETAILS_LABEL,
                           blob=bytes(before.sealed_details))["features"]["orders_90d"] == 7

    customer_erase(customer_id=customer, actor="user:dpo")

    after = DecisionRecord.objects.get(pk=sealed_decision.pk)
    assert (after.customer, after.outputs, after.content_hash) == (customer, before.outputs, before.content_hash)
    assert bytes(after.sealed_details) == bytes(before.sealed_details)  # nothing updated: the key is gone
    with pytest.raises(DecryptionError):
        customer_unseal(customer_id=customer, label=DECISION_DETAILS_LABEL, blob=bytes(after.sealed_details))
    assert DecisionRecord.objects.get(pk=other.pk).content_hash == other.content_hash
    result = services.chain_verify_run(actor="cli")
    assert result.ok and result.checked == sum(m.objects.count() for m in RECORD_TYPES.values()) >= 3
    assert "customer.erased" in _audit_text()
    assert "lovelace" not in _audit_text() and "ada.lovelace@example.com" not in _audit_text()
    assert verify_chain().ok
