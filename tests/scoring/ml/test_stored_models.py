"""Model files already in a registry keep loading and scoring the same after code moves.

The fixtures in ``fixtures/`` were written by ``fixtures/make_stored_models.py`` with the code of
``scoring/ml/models.py`` before it was split into one module per model family (issue 22). Loading goes
through the same path as the registry (``registry_io.load_bundle`` / ``load_classifier``: hash check first,
then the type allow-list), and every output is compared with what the old code predicted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring.ml.models import predict_all
from scoring.ml.registry_io import ArtifactTampered, load_bundle, load_classifier

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _sha(name: str) -> str:
    for line in (FIXTURES / "stored_models.sha256").read_text().splitlines():
        file, sha = line.split()
        if file == name:
            return sha
    raise KeyError(name)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "stored_models_expected.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_bundle_written_before_the_split_loads_and_scores_the_same(expected) -> None:
    data = (FIXTURES / "bundle_before_split.skops").read_bytes()
    bundle = load_bundle(data, _sha("bundle_before_split.skops"))
    p = predict_all(bundle, expected["X"])
    # Same model, same inputs: equal to the last few ulps. Not bit-equal across machines: NumPy picks SIMD
    # kernels for exp/log by CPU, so the 15th significant digit can differ between hosts (seen: 1e-14).
    # A model that loaded wrongly differs by orders of magnitude more.
    same = {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(p.clv, expected["clv"], **same)
    np.testing.assert_allclose(p.churn_probability, expected["churn"], **same)
    np.testing.assert_allclose(p.upsell, expected["upsell"], **same)
    np.testing.assert_allclose(p.advocacy, expected["advocacy"], **same)
    np.testing.assert_array_equal(p.segment_code, expected["segment_code"])
    assert [str(s) for s in p.segment] == [str(s) for s in expected["segment"]]
    assert set(p.contributions) == {"clv", "churn", "upsell", "advocacy"}
    for key, contribution in p.contributions.items():
        np.testing.assert_allclose(contribution.baseline, expected[f"{key}_baseline"], **same)
        np.testing.assert_allclose(contribution.values, expected[f"{key}_values"], **same)
    # the unexplained path gives the same scores
    fast = predict_all(bundle, expected["X"], explain=False)
    np.testing.assert_allclose(fast.clv, expected["clv"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.churn_probability, expected["churn"], rtol=1e-9, atol=1e-9)


def test_table_churn_model_written_before_the_split_loads_and_scores_the_same(expected) -> None:
    data = (FIXTURES / "table_churn_before_split.skops").read_bytes()
    model = load_classifier(data, _sha("table_churn_before_split.skops"))
    X = expected["table_X"].astype(object)
    X[:, 1:] = X[:, 1:].astype(float)
    np.testing.assert_array_equal(model.predict_proba(X), expected["table_proba"])
    assert model.feature_names == ("plan", "tenure_months", "support_tickets")


def test_stored_file_is_still_checked_before_it_is_parsed() -> None:
    data = bytearray((FIXTURES / "bundle_before_split.skops").read_bytes())
    data[len(data) // 2] ^= 0x01
    with pytest.raises(ArtifactTampered):
        load_bundle(bytes(data), _sha("bundle_before_split.skops"))
