"""Build the small per-language name gazetteers and common-word lists under ``profiles/pseudonymizer/data/``.

Run once by a maintainer (never by the service, never at run time). The inputs are registry packages,
installed into a throw-away folder so they never enter the service's environment::

    pip install --target /tmp/gaz names-dataset==3.3.1 wordfreq==3.1.1 simplemma==2.0.0
    PYTHONPATH=/tmp/gaz python tools/build_name_gazetteers.py

Sources and licences (copied beside the data as ``data/LICENSE-*``):

* given names and surnames: ``names-dataset`` 3.3.1 (package LICENSE file: Apache-2.0; its metadata says
  MIT; lists of names are facts). Per language, the top ``GIVEN_N`` given names and ``SURNAME_N`` surnames by
  the dataset's per-country rank, for the countries in ``COUNTRIES``. The raw dataset lists many common words
  as names ("Kot", "Dom", "Tak"): every name that is also a common word of the language is *flagged* (a
  ``*`` after a tab) and the recognizers count a flagged name only in a name context.
  For a language spoken in several countries, the per-country lists are united.
* common words: ``wordfreq`` 3.1.1 top list (data CC-BY-SA 4.0), the ``COMMON_N`` most frequent words of the
  language that ``simplemma``'s dictionary knows (frequent non-words are mostly names), minus those that ``simplemma`` 2.0.0 (MIT) lemmatizes to a capitalised lemma (proper nouns,
  i.e. names; for German, whose nouns are all capitalised, the English and Dutch dictionaries decide).

A word is "common" when it is in that list. Faker is never a source (the tests and the bench generate their
texts with Faker, so a gazetteer built from it would measure itself).
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "profiles" / "pseudonymizer" / "data"
COUNTRIES: dict[str, tuple[str, ...]] = {
    "en": ("GB", "US", "IE"),
    "pl": ("PL",),
    "fi": ("FI",),
    "nl": ("NL", "BE"),
    "sv": ("SE",),
    "de": ("DE", "AT", "CH"),
}
GIVEN_N = 4000  # per country
SURNAME_N = 8000  # per country
COMMON_N = 25000
# names-dataset ranks a name only in its ten biggest countries, so "David" has no rank in NL or SE: every
# language also gets the names ranked in the top INTERNATIONAL_N of any of these European / English countries.
INTERNATIONAL = ("GB", "US", "IE", "DE", "AT", "CH", "FR", "NL", "BE", "SE", "FI", "PL", "DK", "NO", "ES", "IT", "PT")
INTERNATIONAL_GIVEN_N = 1000
INTERNATIONAL_SURNAME_N = 1000
TOP_GIVEN_UNFLAGGED = 1500  # German only, see main()


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not importable: install it with pip --target (see the docstring)")
    return Path(next(iter(spec.submodule_search_locations)))


def _load(path: Path) -> dict:
    with gzip.open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - a maintainer's local build step over a pinned registry package


def _plausible(name: str) -> bool:
    core = name.replace("-", "").replace("'", "")
    return 2 <= len(name) <= 24 and core.isalpha() and name[0].isupper() and not name.isupper()


def _top(names: dict, countries: tuple[str, ...], n: int) -> list[str]:
    """The ``n`` best-ranked names of each country, united, best rank first."""
    best: dict[str, int] = {}
    for country in countries:
        ranked = sorted(
            (info["rank"][country], name) for name, info in names.items()
            if (info.get("rank") or {}).get(country) is not None and _plausible(name)
        )[:n]
        for rank, name in ranked:
            best[name] = min(rank, best.get(name, rank))
    return sorted(best, key=lambda k: (best[k], k))


def main() -> None:
    import simplemma
    import wordfreq

    nd = _package_dir("names_dataset")
    print("loading names-dataset (slow, ~2 GB)...")
    first = _load(nd / "v3" / "first_names.pkl.gz")
    last = _load(nd / "v3" / "last_names.pkl.gz")
    OUT.mkdir(parents=True, exist_ok=True)
    for lang, countries in COUNTRIES.items():
        common: list[str] = []
        for word in wordfreq.top_n_list(lang, COMMON_N):
            if not word.isalpha():
                continue
            if not simplemma.is_known(word, lang) and not (lang == "de" and simplemma.is_known(word.title(), lang)):
                continue  # frequent, but no dictionary word: mostly names ("nicole", "watkins")
            lemma = simplemma.lemmatize(word, lang)
            if lang != "de" and lemma[:1].isupper():
                continue  # a proper noun (a name, a place): not an ordinary word
            # German capitalises every noun, so its own lemmas cannot tell a name from a noun: a word that
            # the English or Dutch dictionary knows as a proper noun ("michael", "thomas") is not ordinary.
            if lang == "de" and any(simplemma.lemmatize(word, other)[:1].isupper() for other in ("en", "nl")):
                continue
            common.append(word)
        common_set = set(common)
        (OUT / f"common_{lang}.txt").write_text("\n".join(sorted(common_set)) + "\n", encoding="utf-8")
        for kind, source, n, n_int in (("given", first, GIVEN_N, INTERNATIONAL_GIVEN_N),
                                       ("surnames", last, SURNAME_N, INTERNATIONAL_SURNAME_N)):
            rows = []
            top_names = set(_top(source, countries, TOP_GIVEN_UNFLAGGED)) if kind == "given" and lang == "de" else set()
            for name in dict.fromkeys([*_top(source, countries, n), *_top(source, INTERNATIONAL, n_int)]):
                # German: the dictionary lists given names among its nouns ("Maximilian", "Norbert"); a given
                # name among the country's most common ones is a name first.
                flag = "\t*" if name.lower() in common_set and name not in top_names else ""
                rows.append(name + flag)
            (OUT / f"{kind}_{lang}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        print(lang, len(common_set), "common words")
    lic = nd.parent / "names_dataset-3.3.1.dist-info"
    for candidate in (lic / "LICENSE", *lic.glob("LICEN*")):
        if candidate.exists():
            shutil.copy(candidate, OUT / "LICENSE-names-dataset.txt")
            break
    wf = _package_dir("wordfreq").parent
    for candidate in wf.glob("wordfreq-*.dist-info/LICEN*"):
        shutil.copy(candidate, OUT / "LICENSE-wordfreq-code.txt")


if __name__ == "__main__":
    main()
