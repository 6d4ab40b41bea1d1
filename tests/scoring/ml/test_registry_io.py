from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio

from scoring.ml.models import predict_all
from scoring.ml.registry_io import (
    ArtifactTampered,
    UntrustedArtifact,
    bundle_to_dict,
    dump_bundle,
    load_bundle,
    sha256,
)


@pytest.fixture(scope="module")
def artifact(small_bundle):
    return dump_bundle(small_bundle)


def test_roundtrip_predictions_identical(small_bundle, artifact, current_X) -> None:
    data, digest = artifact
    assert digest == sha256(data) and len(digest) == 64
    loaded = load_bundle(data, digest)
    a, b = predict_all(small_bundle, current_X), predict_all(loaded, current_X)
    for field in ("clv", "churn_probability", "upsell", "advocacy", "segment_code"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert loaded.metrics == small_bundle.metrics and loaded.model_card == small_bundle.model_card
    untrusted = sio.get_untrusted_types(data=data)
    assert all(t.startswith(("sklearn.", "numpy.")) for t in untrusted)


@pytest.mark.parametrize("position", [0, 0.5, -1])
def test_single_flipped_byte_is_refused(artifact, position) -> None:
    data, digest = artifact
    i = int(position * (len(data) - 1)) if position != -1 else len(data) - 1
    bad = bytearray(data)
    bad[i] ^= 0x01
    with pytest.raises(ArtifactTampered):
        load_bundle(bytes(bad), digest)


def test_wrong_hash_refused(artifact) -> None:
    data, _ = artifact
    with pytest.raises(ArtifactTampered):
        load_bundle(data, "0" * 64)


class Evil:
    pass


def test_foreign_types_refused_even_with_valid_hash(small_bundle) -> None:
    d = bundle_to_dict(small_bundle)
    d["model_card"] = {"payload": Evil()}
    data = sio.dumps(d)
    with pytest.raises(UntrustedArtifact):
        load_bundle(data, sha256(data))
