"""The compile-free known-identifier matcher (profiles.pseudonymizer.KnownMatcher).

It replaced one compiled regex per customer and kind; ``known_regex_oracle`` keeps those regexes, and the
matcher must find exactly the same spans (start, end, type, key) for every author and text. Also: one
author's identifiers never act on another author's text, and nothing survives from one call to the next.
Pure Python, no database.
"""

from __future__ import annotations

import gc
import random
import re
import unicodedata

import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

import profiles.pseudonymizer as pzmod
from profiles.pseudonymizer import KnownIdentifiers, Pseudonymizer, get_pseudonymizer

from .known_regex_oracle import known_spans as oracle_spans

LOCALES = ("pl_PL", "nl_NL", "fi_FI", "sv_SE", "en_GB", "de_DE", "es_ES", "da_DK")
GLUE = (" ", ", ", ". ", "\n", " - ", "-", "(", ")", ": ", "@", ".", "_", "x.", "1", "/", "  ", "'", "\u00a0")


@pytest.fixture(scope="module")
def pz() -> Pseudonymizer:
    return get_pseudonymizer()


def matcher_spans(text: str, known: KnownIdentifiers) -> list[tuple[int, int, str, str]]:
    matcher = pzmod.build_known_matcher(known)
    return [(s.start, s.end, s.placeholder_type, s.key) for s in pzmod.match_known(text, matcher)]


def _strip_accents(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


def _author(fake: Faker, rng: random.Random) -> dict[str, str]:
    first, last = fake.first_name(), fake.last_name()
    if rng.random() < 0.15:
        last = f"{rng.choice(['van der', 'de', 'von', 'af', 'Del'])} {last}"
    if rng.random() < 0.1:
        first = f"{first}-{fake.first_name()}"
    digits = re.sub(r"\D", "", fake.phone_number())
    phone = rng.choice([fake.phone_number(), "+" + digits, "00" + digits, f"({digits[:3]}) {digits[3:]}"])
    return {
        "first": first,
        "last": last,
        "email": fake.email(),
        "phone": phone,
        "address": f"{fake.street_address()}, {fake.postcode()} {fake.city()}".replace("\n", " "),
        "other": f"{rng.choice('ABCKXZ')}{rng.choice('ABCKXZ')}-{rng.randrange(1000, 9999)}",
    }


def _variants(a: dict[str, str], rng: random.Random) -> list[str]:
    """Ways an author's identifiers show up in tickets (and near misses)."""
    digits = re.sub(r"\D", "", a["phone"])
    grouped = " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    street, _, rest = a["address"].partition(", ")
    return [
        f"{a['first']} {a['last']}",
        f"{a['last']}, {a['first']}",
        a["first"].upper(),
        a["last"].lower(),
        _strip_accents(a["last"]),
        a["last"].split()[-1] + rng.choice(["ego", "em", "sen", "a", "in", "ssa", "eja"]),
        a["first"] + rng.choice(["ie", "y", "", "s"]),
        a["email"],
        a["email"].upper(),
        a["email"].split("@")[0],
        a["phone"],
        digits,
        grouped,
        "+" + digits[:2] + " (0) " + digits[2:],
        digits[-7:],
        a["phone"] + " ext. 12",
        a["address"],
        street,
        rest.replace(" ", "", 1),
        rest.upper(),
        a["other"],
        a["other"].replace("-", ""),
        a["other"].lower().replace("-", " - "),
    ]


def _text(pieces: list[str], rng: random.Random) -> str:
    out = [rng.choice(["Hi", "Ticket:", "", "Kontakt", "Terveisin"])]
    for piece in pieces:
        out.append(rng.choice(GLUE) if rng.random() < 0.4 else " ")
        out.append(piece)
    return "".join(out)


def _authors(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed * 100 + i)
    return [_author(fakers[LOCALES[i % len(LOCALES)]], rng) for i in range(n)]


def _known(a: dict[str, str]) -> KnownIdentifiers:
    return KnownIdentifiers(
        names=(f"{a['first']} {a['last']}",),
        emails=(a["email"],),
        phones=(a["phone"],),
        addresses=(a["address"],),
        other=(a["other"],),
    )


# --------------------------------------------------------------------------------------------------------
# Same spans as the per-customer regexes, for many authors
# --------------------------------------------------------------------------------------------------------


def test_same_spans_as_the_regex_rules_for_many_authors() -> None:
    rng = random.Random(2024)
    authors = _authors(400, seed=5)
    compared = found = 0
    for i, a in enumerate(authors):
        other = authors[(i + 1) % len(authors)]
        mine = _variants(a, rng)
        theirs = _variants(other, rng)
        for _ in range(3):
            pieces = rng.sample(mine, k=rng.randint(1, 8)) + rng.sample(theirs, k=rng.randint(0, 3))
            rng.shuffle(pieces)
            text = _text(pieces, rng)
            expected = oracle_spans(text, _known(a))
            assert matcher_spans(text, _known(a)) == expected, f"author {i}"  # no values in the message
            compared += 1
            found += len(expected)
    assert compared == 1200
    assert found > 3000  # the texts really exercise the matcher


@settings(max_examples=300, deadline=None, database=None)
@given(
    seed=st.integers(min_value=0, max_value=2**16),
    glue=st.lists(
        st.sampled_from(GLUE) | st.text(alphabet="aZ09 .,-@_+()/#x\u0301ł", max_size=3), max_size=8
    ),
)
def test_same_spans_as_the_regex_rules_at_odd_boundaries(seed: int, glue: list[str]) -> None:
    rng = random.Random(seed)
    a = _authors(1, seed=seed % 97)[0]
    pieces = rng.sample(_variants(a, rng), k=min(len(glue) + 1, 6))
    text = pieces[0] + "".join(g + p for g, p in zip(glue, pieces[1:], strict=False)) + "".join(glue[5:])
    known = _known(a)
    assert matcher_spans(text, known) == oracle_spans(text, known)


@pytest.mark.parametrize(
    ("known", "text", "expected"),
    [
        # Reversed with a comma (and the surname alone, as the declension rule sees it), a declined form
        # (capitalized only), a lower-case declined form left alone.
        (
            KnownIdentifiers(names=("Jan Kowalski",)),
            "Kowalski, Jan pisze do Kowalskiego; kowalskiego nie.",
            [
                (0, 13, "PERSON", "jan kowalski"),
                (0, 8, "PERSON", "jan kowalski"),
                (23, 34, "PERSON", "jan kowalski"),
            ],
        ),
        # A name inside an e-mail is left to the e-mail.
        (
            KnownIdentifiers(names=("Jan Kowalski",), emails=("jan.kowalski@firma.pl",)),
            "jan.kowalski@firma.pl / Jan",
            [(24, 27, "PERSON", "jan kowalski"), (0, 21, "EMAIL", "jan.kowalski@firma.pl")],
        ),
        # "+358 00..." trunk after the country code; an extension; digits glued to another number are not it.
        (
            KnownIdentifiers(phones=("+358008575773",)),
            "soita +358 00 857 5773 tai 08575773 x12, ei 108575773",
            [(6, 22, "PHONE", "008575773"), (27, 39, "PHONE", "008575773")],
        ),
        # Every address part (overlaps are resolved later, longest first); postcode without its dash;
        # other ids with different separators, but not inside a longer number.
        (
            KnownIdentifiers(addresses=("ul. Polna 5, 00-950 Warszawa",), other=("KX-4471",)),
            "Adres: ul. Polna 5, 00950 Warszawa; klient kx 4471, nie KX-44710.",
            [
                (7, 34, "ADDRESS", "ul polna 5 00 950 warszawa"),
                (7, 18, "ADDRESS", "ul polna 5"),
                (7, 16, "ADDRESS", "ul polna"),
                (20, 34, "ADDRESS", "00 950 warszawa"),
                (20, 25, "ADDRESS", "00 950"),
                (26, 34, "ADDRESS", "warszawa"),
                (43, 50, "IDENTIFIER", "kx 4471"),
            ],
        ),
    ],
)
def test_matcher_spans(known: KnownIdentifiers, text: str, expected: list[tuple[int, int, str, str]]) -> None:
    assert matcher_spans(text, known) == expected
    assert oracle_spans(text, known) == expected


# --------------------------------------------------------------------------------------------------------
# Isolation between authors and between calls
# --------------------------------------------------------------------------------------------------------


def test_one_authors_identifiers_never_act_on_another_authors_text() -> None:
    rng = random.Random(77)
    authors = _authors(120, seed=9)
    for i, a in enumerate(authors):
        b = authors[(i + 37) % len(authors)]
        text_b = _text(_variants(b, rng)[:1] + _variants(b, rng)[7:8] + _variants(b, rng)[10:11], rng)
        spans = matcher_spans(text_b, _known(a))
        # Anything a's matcher finds in b's text must literally be one of a's own identifier pieces.
        a_words = {
            w
            for v in _known(a).names + _known(a).addresses + _known(a).other
            for w in re.findall(r"\w+", pzmod.fold_text(v))
        }
        for start, end, _ptype, _key in spans:
            found = pzmod.fold_text(text_b[start:end])
            assert set(re.findall(r"\w+", found)) <= a_words or re.sub(r"\D", "", found) in re.sub(
                r"\D", "", _known(a).phones[0]
            ), f"author {i}"


def test_batch_of_different_authors_equals_one_call_per_author(pz: Pseudonymizer) -> None:
    rng = random.Random(3)
    authors = _authors(24, seed=21)
    texts = [
        f"{_text(_variants(a, rng)[:3], rng)} wrote from {a['email']} about {a['other']}." for a in authors
    ]
    knowns = [_known(a) for a in authors]
    batch = pz.pseudonymize_batch(
        texts, known=knowns, placeholder_states=[{"_salt": "ab" * 16} for _ in texts]
    )
    single = [
        pz.pseudonymize(t, known=k, placeholder_state={"_salt": "ab" * 16})
        for t, k in zip(texts, knowns, strict=True)
    ]
    assert batch == single
    for a, out in zip(authors, batch, strict=True):
        assert a["other"] not in out.text and a["email"] not in out.text
        assert "<IDENTIFIER_1>" in out.text and "<EMAIL_1>" in out.text
    # Swapping the authors: each text pseudonymized with its neighbour's identifiers keeps its own e-mail.
    swapped = pz.pseudonymize_batch(texts, known=knowns[1:] + knowns[:1])
    for out in swapped:
        assert "<EMAIL_" in out.text  # still caught by the e-mail pattern recognizer...
    for out in swapped:
        assert "<IDENTIFIER_" not in out.text  # ...but no id is taken for the author's own


def test_no_identifier_carries_over_from_one_call_to_the_next(pz: Pseudonymizer) -> None:
    text = "Tickets KX-4471-ZQ and AB-9911-CD are about the same parcel."
    first = pz.pseudonymize(text, known=KnownIdentifiers(other=("KX-4471-ZQ",)))
    assert first.text == "Tickets <IDENTIFIER_1> and AB-9911-CD are about the same parcel."
    # The customer's id changed: the old one is no longer known, the new one is.
    second = pz.pseudonymize(text, known=KnownIdentifiers(other=("AB-9911-CD",)))
    assert second.text == "Tickets KX-4471-ZQ and <IDENTIFIER_1> are about the same parcel."
    third = pz.pseudonymize(text)
    assert third.text == text
    # Same in one batch: per-text identifiers, nothing shared between the texts.
    batch = pz.pseudonymize_batch(
        [text, text, text],
        known=[KnownIdentifiers(other=("KX-4471-ZQ",)), None, KnownIdentifiers(other=("AB-9911-CD",))],
    )
    assert [r.text for r in batch] == [first.text, text, second.text]


def test_no_identifier_is_kept_by_the_module(pz: Pseudonymizer) -> None:
    marker_name, marker_id = "Zyxwvutsrq Qwertzuiopa", "QQ-918273-ZZ"
    known = KnownIdentifiers(names=(marker_name,), other=(marker_id,), emails=("zyx.qwe@example.org",))
    matcher = pzmod.build_known_matcher(known)
    assert "Zyx" not in repr(matcher) and "918273" not in repr(matcher)
    out = pz.pseudonymize(f"{marker_name} wrote about {marker_id} from zyx.qwe@example.org", known=known)
    assert out.text == "<PERSON_1> wrote about <IDENTIFIER_1> from <EMAIL_1>"
    del matcher, out, known
    gc.collect()
    needles = ("zyxwvutsrq", "qwertzuiopa", "918273", "zyx.qwe")
    # Module-level state (fold table, caches, singletons) holds characters and patterns only.
    assert all(isinstance(k, int) for k in pzmod.FOLD_TABLE)
    assert all(len(v) <= 3 for v in pzmod.FOLD_TABLE.values())
    for name, value in vars(pzmod).items():
        if isinstance(value, dict | set | frozenset | list | tuple):
            dumped = repr(value).casefold()
            assert not any(n in dumped for n in needles), name
    assert not any(n in repr(vars(pz)).casefold() for n in needles)
