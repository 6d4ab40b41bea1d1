"""Seed the three purposes of processing and their first (v1) consent notices.

Data migration: self-contained (no app-code imports), reversible. v1 notices are dated at go-live
(2020-01-01 UTC) so that consents captured before this service existed can be imported on v1.
"""

import datetime
import hashlib

from django.db import migrations

GO_LIVE = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)

PURPOSES = [
    {
        "code": "automated_scoring",
        "name": "Automated customer scoring",
        "description": (
            "We compute scores about you from your orders, invoices, support history and use of our "
            "website and app: expected customer lifetime value, risk of leaving, likely interest in "
            "other products, and how likely you are to recommend us. The scores place you in a "
            "service tier."
        ),
        "lawful_basis": "consent",
        "explicit_consent_required": True,
        "retention_days": 730,
        "data_categories": ["orders_and_invoices", "support_tickets_pseudonymized", "web_and_app_usage",
                            "reviews_nps_referrals", "crm_attributes"],
        "recipients": "Internal systems only: support desk, account management (CRM).",
        "notice": (
            "I agree that [Company] may use my order history, invoices, support contacts and website/app "
            "usage to calculate automated scores about me (expected value as a customer, risk of leaving, "
            "interest in other products, likelihood to recommend) and to place me in a service tier. "
            "I can ask how a score was reached, ask for a human to review it, and withdraw this consent "
            "at any time, as easily as I gave it."
        ),
    },
    {
        "code": "service_prioritization",
        "name": "Service prioritization",
        "description": (
            "We use your service tier and scores to decide how quickly and by which team your support "
            "requests are handled."
        ),
        "lawful_basis": "consent",
        "explicit_consent_required": True,
        "retention_days": 365,
        "data_categories": ["service_tier", "scores", "support_tickets_pseudonymized"],
        "recipients": "Internal systems only: support desk.",
        "notice": (
            "I agree that [Company] may use my automated service tier and scores to prioritize and route "
            "my support requests. I can ask for a human to review a routing decision, and withdraw this "
            "consent at any time, as easily as I gave it."
        ),
    },
    {
        "code": "marketing",
        "name": "Personalised marketing",
        "description": (
            "We use your scores and purchase history to choose which offers we send you by e-mail or show "
            "you in our app."
        ),
        "lawful_basis": "consent",
        "explicit_consent_required": True,
        "retention_days": 730,
        "data_categories": ["contact_details", "orders_and_invoices", "web_and_app_usage", "scores"],
        "recipients": "Internal systems only: marketing e-mail and campaign tools.",
        "notice": (
            "I agree that [Company] may use my purchase history, app/website usage and scores to select "
            "personalised offers sent to me by e-mail or shown in the app. I can withdraw this consent at "
            "any time, as easily as I gave it."
        ),
    },
]


def seed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    ConsentNotice = apps.get_model("consent", "ConsentNotice")
    for spec in PURPOSES:
        purpose, _ = Purpose.objects.get_or_create(
            code=spec["code"],
            defaults={
                "name": spec["name"],
                "description": spec["description"],
                "lawful_basis": spec["lawful_basis"],
                "explicit_consent_required": spec["explicit_consent_required"],
                "retention_days": spec["retention_days"],
                "data_categories": spec["data_categories"],
                "recipients": spec["recipients"],
                "created_at": GO_LIVE,
            },
        )
        if not ConsentNotice.objects.filter(purpose=purpose, version="v1").exists():
            ConsentNotice.objects.create(
                purpose=purpose,
                version="v1",
                text=spec["notice"],
                text_hash=hashlib.sha256(spec["notice"].encode("utf-8")).hexdigest(),
                requires_reconsent=False,
                published_at=GO_LIVE,
            )


def unseed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    ConsentNotice = apps.get_model("consent", "ConsentNotice")
    codes = [spec["code"] for spec in PURPOSES]
    ConsentNotice.objects.filter(purpose__code__in=codes, version="v1").delete()
    Purpose.objects.filter(code__in=codes, notices__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_consent_ledger"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
