"""Issue 20, fault 6: a customer's plain CRM attributes are encrypted under the customer's own data key, so
erasure (deleting the key) crypto-shreds them.

Adds ``Customer.attributes_encrypted`` / ``attributes_key_version``, encrypts every existing ``attributes``
object into them (AES-256-GCM under the customer's DEK, AAD ``field|<customer>|crm_attributes|<key version>``:
exactly what ``profiles.attribute_sealing`` reads), then drops the plaintext column. Reversible: the reverse
decrypts them back. The crypto is written out here (no app code imported), with the same primitives and blob
format as ``config.envelope`` (``b"\\x01" + nonce(12) + ciphertext_and_tag``). A customer without a data key
cannot be protected or read: its attributes are dropped (there is none in a consistent database: erasure
deletes the customer row with its key).

On PostgreSQL the old plaintext stays in dead tuples until VACUUM; run ``VACUUM (FULL) profiles_customer``
after migrating if the plaintext must be gone from the table files at once (docs/PRIVACY.md).
"""

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import migrations, models

VERSION = b"\x01"
FIELD = "crm_attributes"
CHUNK = 2000


def _dek(row):
    kek = settings.KEK_KEYS[row.kek_id]
    blob = bytes(row.wrapped)
    return AESGCM(kek).decrypt(blob[1:13], blob[13:], f"dek|{row.customer_id}|{row.kek_id}".encode())


def _aad(customer_id, key_version):
    return f"field|{customer_id}|{FIELD}|{key_version}".encode()


def encrypt_attributes(apps, schema_editor):
    Customer = apps.get_model("profiles", "Customer")
    CustomerKey = apps.get_model("profiles", "CustomerKey")
    last = None
    while True:
        qs = Customer.objects.order_by("id").only("id", "attributes")
        if last is not None:
            qs = qs.filter(id__gt=last)
        batch = list(qs[:CHUNK])
        if not batch:
            return
        last = batch[-1].id
        keys = {k.customer_id: k for k in CustomerKey.objects.filter(customer_id__in=[c.id for c in batch])}
        changed = []
        for customer in batch:
            if not customer.attributes:
                continue
            key = keys.get(customer.id)
            if key is not None:
                plaintext = json.dumps(customer.attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                nonce = os.urandom(12)
                customer.attributes_encrypted = VERSION + nonce + AESGCM(_dek(key)).encrypt(
                    nonce, plaintext.encode("utf-8"), _aad(customer.id, key.key_version))
                customer.attributes_key_version = key.key_version
            customer.attributes = {}
            changed.append(customer)
        Customer.objects.bulk_update(changed, ["attributes", "attributes_encrypted", "attributes_key_version"])


def decrypt_attributes(apps, schema_editor):
    Customer = apps.get_model("profiles", "Customer")
    CustomerKey = apps.get_model("profiles", "CustomerKey")
    rows = Customer.objects.filter(attributes_encrypted__isnull=False).order_by("id")
    for start in range(0, rows.count(), CHUNK):
        batch = list(rows[start:start + CHUNK])
        keys = {k.customer_id: k for k in CustomerKey.objects.filter(customer_id__in=[c.id for c in batch])}
        for customer in batch:
            key = keys.get(customer.id)
            blob = bytes(customer.attributes_encrypted)
            customer.attributes = {} if key is None else json.loads(AESGCM(_dek(key)).decrypt(
                blob[1:13], blob[13:], _aad(customer.id, customer.attributes_key_version)))
        Customer.objects.bulk_update(batch, ["attributes"])
    Customer.objects.update(attributes_encrypted=None, attributes_key_version=None)


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0002_ticket_response_language_sentiment"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="attributes_encrypted",
            field=models.BinaryField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="customer",
            name="attributes_key_version",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(encrypt_attributes, decrypt_attributes),
        migrations.RemoveField(model_name="customer", name="attributes"),
    ]
