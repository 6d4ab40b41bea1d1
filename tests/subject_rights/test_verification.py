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
    """The German start page is accessible (landmarks, labels, legend) and every message the English page shows
    appears translated: each catalog message found in the English page's text has its German translation in the
    German page, and its English text is gone."""
    import html as html_lib
    from pathlib import Path

    import polib

    def text_of(page: str) -> str:
        page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
        return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())

    english = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    response = client.get("/me/", HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="de"' in html
    assert "<h1>" in html and '<label for="id_email">' in html and "<legend>" in html
    assert '<main id="main">' in html and 'class="skip" href="#main"' in html
    assert "Einen Datenschutzantrag stellen" in html and "Was möchten Sie tun?" in html
    po = polib.pofile(str(Path(__file__).resolve().parents[2] / "subject_rights" / "locale" / "de" / "LC_MESSAGES"
                          / "django.po"))
    english_text, german_text = text_of(english), text_of(html)
    shown = [e for e in po if not e.obsolete and not e.msgid_plural and "%(" not in e.msgid and len(e.msgid) > 3
             and e.msgid in english_text]
    assert len(shown) >= 15  # headings, labels, choices, help texts, the switcher, the footer
    for entry in shown:
        assert " ".join(entry.msgstr.split()) in german_text, entry.msgid
        if entry.msgid != entry.msgstr and entry.msgid not in entry.msgstr:
            assert entry.msgid not in german_text, entry.msgid


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


def _source_messages(tmp_path: Any) -> set[tuple[str, str]]:
    """Every msgid (and plural) of the customer pages, forms and e-mails, extracted from the sources now, with
    Django's own ``makemessages`` (xgettext) run over a copy of the app without the DPO console."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import polib

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "subject_rights"
    shutil.copytree(root / "subject_rights", copy,
                    ignore=shutil.ignore_patterns("console", "locale", "__pycache__", "*.pyc", "static"))
    (copy / "locale").mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, str(root / "manage.py"), "makemessages", "-l", "pl", "--no-location",
                    "--no-wrap"], cwd=copy, env=env, check=True, capture_output=True)
    po = polib.pofile(str(copy / "locale" / "pl" / "LC_MESSAGES" / "django.po"))
    return {(e.msgid, e.msgid_plural) for e in po if not e.obsolete}


def test_every_message_of_the_customer_pages_and_emails_is_translated_and_compiled(tmp_path: Any) -> None:
    """The committed catalogs hold exactly the messages the sources use today (none missing, none stale), each
    with a non-empty translation in every language (every plural form), none fuzzy, and the committed .mo files
    say the same as the .po files."""
    import gettext
    from pathlib import Path

    import polib

    used = _source_messages(tmp_path)
    assert len(used) > 250 and ("Your data", "") in used
    root = Path(__file__).resolve().parents[2] / "subject_rights" / "locale"
    for language in ("pl", "fi", "nl", "sv", "de"):
        po = polib.pofile(str(root / language / "LC_MESSAGES" / "django.po"))
        assert not po.metadata_is_fuzzy, language
        entries = {(e.msgid, e.msgid_plural): e for e in po if not e.obsolete}
        assert sorted(used - set(entries)) == [], (language, "messages without a catalog entry")
        assert sorted(set(entries) - used) == [], (language, "stale catalog entries")
        for key, entry in entries.items():
            assert "fuzzy" not in entry.flags, (language, key)
            forms = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
            assert forms and all(form.strip() for form in forms), (language, key)
        nplurals = int(po.metadata["Plural-Forms"].split("nplurals=")[1].split(";")[0])
        with open(root / language / "LC_MESSAGES" / "django.mo", "rb") as handle:
            compiled = gettext.GNUTranslations(handle)
        for (msgid, plural), entry in entries.items():
            if plural:
                assert len(entry.msgstr_plural) == nplurals, (language, msgid)
                for n in (1, 2, 5, 22):
                    assert compiled.ngettext(msgid, plural, n) in entry.msgstr_plural.values(), (language, msgid)
            else:
                assert compiled.gettext(msgid) == entry.msgstr, (language, msgid)
