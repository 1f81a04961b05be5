import numpy as np
import pytest

from auditor.features import auto_dims, fit_projection


def test_projection_is_whitened_and_deterministic():
    x = np.random.default_rng(0).normal(size=(200, 50)).astype(np.float32) + 3
    p = fit_projection(x, dims=8, seed=0)
    z = p(x)
    assert z.shape == (200, 8)
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1.0, rtol=0.05)
    np.testing.assert_array_equal(z, fit_projection(x, dims=8, seed=0)(x))
    assert p.plane(x).shape == (200, 2)


def test_dims_follow_the_class_count():
    assert auto_dims(5) == 32 and auto_dims(10) == 60 and auto_dims(100) == 128


def test_too_few_rows_is_refused():
    with pytest.raises(ValueError, match="at least 3 embeddings"):
        fit_projection(np.ones((2, 4), np.float32))
