"""Free-text work of an import chunk on a process pool (issue 21 item 2).

Ticket language, mood and pseudonymization cost milliseconds of CPU per text (language identification,
sentiment, rule recognizers and, for English, spaCy NER), far more than writing the row. With
``TEXT_WORKERS`` > 1 the texts of a chunk are handed to that many worker processes and the rows are then
written in bulk by the calling process, as before:

* the pool is ``concurrent.futures.ProcessPoolExecutor`` (no home-made queue), created once per process on
  first use and reused by every later chunk; its workers are forked after the models were loaded in the
  parent, so they share them copy-on-write and start in milliseconds. Workers only compute: no database,
  no cache, no broker (they never touch the connections they inherit);
* the work is a pure function of its inputs, so the result does not depend on how it is split: mood per text
  (contiguous parts), pseudonymization per customer (every text of one customer in one part, in record order,
  so the per-customer placeholder numbering is the serial one). ``tests/profiles/test_text_pool.py`` compares
  the stored rows of a pooled and a serial import;
* texts and identifiers travel to the workers through the pool's pipes in memory, never to disk, a broker or
  a log;
* a broken pool (a worker killed) is dropped and the chunk's texts are processed in this process: the chunk's
  result is the same and nothing is lost.

Across machines the unit of scale-out stays the import chunk: a background import queues one
``profiles.tasks.import_chunk`` Celery task per chunk, which any number of workers take. Inside a daemonic
process (which may not have children) the work runs serially.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MIN_TEXTS_PER_WORKER = 8  # below this, a chunk's texts are not worth the round trip

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def text_workers() -> int:
    """Worker processes for free text (setting ``TEXT_WORKERS``; 1 = in this process)."""
    from django.conf import settings

    n = int(getattr(settings, "TEXT_WORKERS", 1) or 1)
    if n <= 1 or multiprocessing.current_process().daemon:
        return 1
    return n


def _warm() -> None:
    """Load the text models in this process before forking, so that the workers share them."""
    from .language import SUPPORTED_LANGUAGES, language_detect
    from .pseudonymizer import get_pseudonymizer
    from .pseudonymizer.known import KnownIdentifiers
    from .sentiment import sentiment_analyze

    language_detect("Thank you for the quick answer about my order.")
    sample = ("John Smith wrote from 12 Station Road, London, on 3 March: call +44 7700 900123 or "
              "john.smith@example.com, born 1980-02-03, IBAN GB33BUKB20201555555555.")
    known = KnownIdentifiers(names=("John Smith",), emails=("john.smith@example.com",))
    for lang in SUPPORTED_LANGUAGES:  # every language's recognizers and sentiment lexicon, and the NER
        sentiment_analyze(sample, language=lang)
        get_pseudonymizer().pseudonymize_batch([sample], known=[known], language=lang, locale="GB")


def _pool_get(n: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _warm()
            # The heap that exists now (Django, the apps, the models) is moved out of the collector's reach
            # before forking: a worker's collections would otherwise traverse, and so copy, all of it.
            gc.collect()
            gc.freeze()
            try:
                _pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"))
                list(_pool.map(_started, range(n)))  # the workers fork now, with the frozen heap
            finally:
                gc.unfreeze()
            _pool_size = n
        return _pool


def _started(_: int) -> None:
    return None


def _pool_drop() -> None:
    global _pool, _pool_size
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool, _pool_size = None, 0


def parts_run(fn: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """``[fn(part) for part in parts]``, on the pool when there is one and more than one part."""
    if len(parts) <= 1 or text_workers() == 1:
        return [fn(part) for part in parts]
    try:
        return list(_pool_get(text_workers()).map(fn, parts))
    except BrokenProcessPool:
        logger.warning("text pool broken; processing the chunk's texts in this process")
        _pool_drop()
        return [fn(part) for part in parts]


def split_contiguous(items: Sequence[T], n: int) -> list[list[T]]:
    """``items`` in at most ``n`` contiguous parts of near-equal size (each at least MIN_TEXTS_PER_WORKER)."""
    n = max(1, min(n, len(items) // MIN_TEXTS_PER_WORKER))
    size, extra = divmod(len(items), n)
    parts, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        parts.append(list(items[start:end]))
        start = end
    return [p for p in parts if p]


def split_by_key(keys: Sequence[Hashable], weights: Sequence[int], n: int) -> list[list[int]]:
    """Positions ``0..len(keys)-1`` in at most ``n`` parts, all positions of one key in the same part and in
    their order; the keys' total weights balanced over the parts (largest first)."""
    n = max(1, min(n, len(keys) // MIN_TEXTS_PER_WORKER))
    groups: dict[Hashable, list[int]] = {}
    load: dict[Hashable, int] = {}
    for pos, (key, weight) in enumerate(zip(keys, weights, strict=True)):
        groups.setdefault(key, []).append(pos)
        load[key] = load.get(key, 0) + weight
    bins: list[list[int]] = [[] for _ in range(n)]
    totals = [0] * n
    for key in sorted(groups, key=lambda k: -load[k]):  # stable: ties keep first-seen order
        i = totals.index(min(totals))
        bins[i].extend(groups[key])
        totals[i] += load[key]
    return [sorted(b) for b in bins if b]

