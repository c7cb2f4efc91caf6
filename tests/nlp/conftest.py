"""Fixtures for the sentiment tests: the real default model, loaded once per session."""

from __future__ import annotations

import pytest

from nlp.transformer import TransformerClassifier, load_classifier


@pytest.fixture(scope="session")
def default_classifier() -> TransformerClassifier:
    """The shipped model (packaged encoder + trained adapter); loading takes a few seconds."""
    return load_classifier()
