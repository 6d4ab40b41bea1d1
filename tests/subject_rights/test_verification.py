"""Self-service identity verification: one-time codes (hash only, lifetime, attempts, throttling), and
pages that never reveal whether an e-mail belongs to a customer."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from freezegun import freeze_time

from subject_rights.models import SubjectRequest, VerificationCode

KNOWN = "known.customer.otp@example.com"
UNKNOWN = "stranger.otp@example.org"


def _code(mail: Any) -> str:
    return re.search(r"\b(\d{8})\b", mail.body).group(1)


def _submit(client: Any, email: str, *, type_: str = "access", token: str = "tok-1") -> Any:
    client.get("/me/")
    return client.post("/me/", {"type": type_, "email": email, "token": token}, follow=True)


def _normalized(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return html


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_known_and_unknown_emails_get_the_same_page_and_the_same_email(client: Any, customer_factory: Any,
                                                                      mailoutbox: Any) -> None:
    from django.test import Client

    customer_factory(email=KNOWN)
    known = _submit(client, KNOWN)
    other = Client()
    unknown = _submit(other, UNKNOWN, token="tok-2")
    assert known.status_code == unknown.status_code == 200
    assert known.redirect_chain == unknown.redirect_chain == [("/me/verify/", 302)]
    assert _normalized(known.content.decode()) == _normalized(unknown.content.decode())
    assert [m.to for m in mailoutbox] == [[KNOWN], [UNKNOWN]]
    assert mailoutbox[0].subject == mailoutbox[1].subject
    assert re.sub(r"\d{8}", "#", mailoutbox[0].body) == re.sub(r"\d{8}", "#", mailoutbox[1].body)
    assert SubjectRequest.objects.filter(status="identity_pending").count() == 2


@pytest.mark.django_db(transaction=True)
def test_code_and_email_are_never_stored_in_clear(client: Any, customer_factory: Any, mailoutbox: Any) -> None:
    from django.db import connection

    customer_factory(email=KNOWN)
    _submit(client, KNOWN)
    _submit(client, UNKNOWN, token="tok-2")
    codes = [_code(m) for m in mailoutbox]
    stored = []
    with connection.cursor() as cursor:
        for table in ("subject_rights_subjectrequest", "subject_rights_verificationcode",
                      "subject_rights_statuschange"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            stored.extend(repr(row) for row in cursor.fetchall())
    dump = "\n".join(stored).lower()
    for needle in [KNOWN, UNKNOWN, "known.customer.otp", "stranger.otp", *codes]:
        assert needle.lower() not in dump
    assert all(len(v.code_hash) == 64 for v in VerificationCode.objects.all())


@pytest.mark.django_db(transaction=True)
def test_correct_code_verifies_and_unknown_email_ends_as_no_data_held(client: Any, purposes: None,
                                                                     mailoutbox: Any) -> None:
    _submit(client, UNKNOWN)
    response = client.post("/me/verify/", {"code": _code(mailoutbox[-1])}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0][0].startswith("/me/status/")
    req = SubjectRequest.objects.get()
    assert (req.status, req.outcome, req.subject) == ("completed", "no_data_held", None)
    assert "We do not hold any personal data about you." in response.content.decode()
    assert req.contact_sealed is None and req.email_digest == ""  # shredded on close
    assert "Cache-Control" in response and "no-store" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_wrong_codes_are_counted_and_lock_the_code_after_the_maximum(client: Any, purposes: None, mailoutbox: Any,
                                                                    settings: Any) -> None:
    settings.DSR_OTP_MAX_ATTEMPTS = 3
    _submit(client, UNKNOWN)
    good = _code(mailoutbox[-1])
    wrong = f"{(int(good) + 1) % 10**8:08d}"
    statuses = [client.post("/me/verify/", {"code": wrong}).status_code for _ in range(3)]
    assert statuses == [400, 400, 400]
    assert VerificationCode.objects.get().attempts == 3
    response = client.post("/me/verify/", {"code": good})
    assert response.status_code == 400 and "Too many wrong attempts" in response.content.decode()
    assert SubjectRequest.objects.get().status == "identity_pending"


@pytest.mark.django_db(transaction=True)
def test_expired_code_is_refused_and_a_new_code_works(client: Any, purposes: None, mailoutbox: Any,
                                                     settings: Any) -> None:
    _submit(client, UNKNOWN)
    first = _code(mailoutbox[-1])
    with freeze_time(timezone.now() + timedelta(seconds=settings.DSR_OTP_TTL_SECONDS + 1)):
        response = client.post("/me/verify/", {"code": first})
        assert response.status_code == 400 and "expired" in response.content.decode()
        assert client.post("/me/verify/resend/").status_code == 200
        second = _code(mailoutbox[-1])
        assert len(mailoutbox) == 2  # the resend sent a second message
        assert second != first  # with a new code (a repeat of the first has a one-in-a-million chance)
        assert client.post("/me/verify/", {"code": first}).status_code == 400  # the old code is superseded
        assert client.post("/me/verify/", {"code": second}).status_code == 302
    assert SubjectRequest.objects.get().status == "completed"


@pytest.mark.django_db(transaction=True)
def test_code_requests_are_throttled_per_hashed_email_without_the_email_in_cache_keys(
    client: Any, purposes: None, mailoutbox: Any, settings: Any,
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "otp": "2/min"}}
    statuses = [_submit(client, UNKNOWN, token=f"t{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    assert len(mailoutbox) == 2 and SubjectRequest.objects.count() == 2
    keys = " ".join(str(k) for k in cache._cache)  # locmem
    assert keys and "stranger" not in keys.lower() and "example.org" not in keys and "127.0.0.1" not in keys


@pytest.mark.django_db(transaction=True)
def test_double_submitted_form_files_one_request_and_sends_one_code(client: Any, purposes: None,
                                                                   mailoutbox: Any) -> None:
    _submit(client, UNKNOWN, token="same")
    _submit(client, UNKNOWN, token="same")
    assert SubjectRequest.objects.count() == 1 and len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_no_page_reveals_anything_before_verification(client: Any, customer_factory: Any, mailoutbox: Any) -> None:
    from subject_rights import links

    customer_factory(email=KNOWN)
    _submit(client, KNOWN)
    req = SubjectRequest.objects.get()
    token = links.status_token(req.id)  # even a correctly signed link shows nothing before verification
    for path in (f"/me/status/{token}/", f"/me/status/{token}/why/"):
        assert client.get(path).status_code == 404
    assert client.get("/me/status/forged-token/").status_code == 404


@pytest.mark.django_db
def test_invalid_email_is_a_form_error_and_nothing_is_sent(client: Any, purposes: None, mailoutbox: Any) -> None:
    client.get("/me/")
    response = client.post("/me/", {"type": "access", "email": "not-an-address", "token": "x"})
    assert response.status_code == 200
    assert re.search(r'class="error" role="alert">Enter a valid e-?mail address', response.content.decode())
    assert SubjectRequest.objects.count() == 0 and mailoutbox == []


def test_pages_are_accessible_and_translatable(client: Any, db: None) -> None:
    response = client.get("/me/", HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="de"' in html
    assert "<h1>" in html and '<label for="id_email">' in html and "<legend>" in html
    assert "Einen Datenschutzantrag stellen" in html and "Was möchten Sie tun?" in html
    assert "Make a privacy request" not in html


@pytest.mark.parametrize(("language", "heading", "button"), [
    ("en", "Make a privacy request", "Send me a code"),
    ("pl", "Złóż żądanie dotyczące prywatności", "Wyślij mi kod"),
    ("fi", "Tee tietosuojapyyntö", "Lähetä minulle koodi"),
    ("nl", "Een privacyverzoek indienen", "Stuur mij een code"),
    ("sv", "Gör en integritetsbegäran", "Skicka en kod till mig"),
    ("de", "Einen Datenschutzantrag stellen", "Code senden"),
])
def test_the_start_page_speaks_the_customers_language(client: Any, db: None, language: str, heading: str,
                                                     button: str) -> None:
    html = client.get("/me/", HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5").content.decode()
    assert f'<html lang="{language}"' in html
    assert heading in html and button in html


def test_the_language_switcher_stores_the_choice_over_accept_language(client: Any, db: None) -> None:
    page = client.get("/me/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    for code, name in (("en", "English"), ("pl", "polski"), ("fi", "suomi"), ("nl", "Nederlands"),
                       ("sv", "svenska"), ("de", "Deutsch")):
        assert f'<option value="{code}"' in page and name in page
    response = client.post("/i18n/setlang/", {"language": "fi", "next": "/me/"})
    assert (response.status_code, response["Location"]) == (302, "/me/")
    html = client.get("/me/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="fi"' in html and "Tee tietosuojapyyntö" in html


def test_every_catalog_is_complete_and_compiled() -> None:
    import gettext
    from pathlib import Path

    import polib

    root = Path(__file__).resolve().parents[2] / "subject_rights" / "locale"
    for language in ("pl", "fi", "nl", "sv", "de"):
        po = polib.pofile(str(root / language / "LC_MESSAGES" / "django.po"))
        assert po.percent_translated() == 100, language
        assert not [e for e in po if "fuzzy" in e.flags], language
        with open(root / language / "LC_MESSAGES" / "django.mo", "rb") as handle:
            compiled = gettext.GNUTranslations(handle)
        for entry in po:
            if entry.obsolete:
                continue
            if entry.msgid_plural:
                assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0], entry.msgid
            else:
                assert compiled.gettext(entry.msgid) == entry.msgstr, (language, entry.msgid)
