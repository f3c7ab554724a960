"""Fixtures of the end-to-end check: skip unless the kind stack's cluster answers."""

from __future__ import annotations

import pytest
from conftest import ROOT, dev_config  # tests/conftest.py

from components.settings import Inputs, load_inputs

from .kube import CONTEXT, unreachable_reason


@pytest.fixture(scope="session")
def cluster() -> str:
    """The kube context of the running stack; skips the check when there is none."""
    reason = unreachable_reason(CONTEXT)
    if reason:
        pytest.skip(reason)
    return CONTEXT


@pytest.fixture(scope="session")
def stack() -> Inputs:
    """The dev stack's validated blueprint and settings (what `make up` deployed)."""
    return load_inputs(dev_config(), root=ROOT)
