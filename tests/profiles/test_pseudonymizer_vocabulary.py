"""spaCy keeps every token string it has seen in its vocabulary for the life of the process; the
pseudonymizer runs NER inside a memory zone, so the words of a text (names included) do not outlive the
call, and a long-running worker's memory does not grow with the texts it has seen."""

from __future__ import annotations

import threading
import uuid

from profiles.pseudonymizer import KnownIdentifiers, get_pseudonymizer


def _unique_surname() -> str:
    return "Qx" + uuid.uuid4().hex[:10].translate(str.maketrans("0123456789", "ghijklmnop")).capitalize()


def test_names_in_a_text_are_not_left_in_the_spacy_vocabulary() -> None:
    p = get_pseudonymizer()
    strings = p._nlp.vocab.strings
    surname = _unique_surname()
    before = len(strings)

    known = KnownIdentifiers(names=(f"Anna {surname}",))
    out = p.pseudonymize_batch([f"Please call Mrs Anna {surname} about her refund.", f"{surname} wrote again."],
                               known=[known, known])

    assert surname not in strings
    assert len(strings) == before
    assert [surname in r.text for r in out] == [False, False]
    assert out[1].text == "<PERSON_1> wrote again."


def test_concurrent_batches_from_several_threads_give_the_same_output_as_one_thread() -> None:
    p = get_pseudonymizer()
    texts = [f"Hello, this is Maria {_unique_surname()} from Leeds, call +44 20 7946 0{i:03d}." for i in range(12)]
    expected = [r.text for r in p.pseudonymize_batch(texts)]
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        results[n] = [r.text for r in p.pseudonymize_batch(texts)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results == dict.fromkeys(range(4), expected)
