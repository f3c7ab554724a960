"""The Pulumi program's boundary: read stack config, validate, or stop before any resource."""

from __future__ import annotations

import gc
import os

import pulumi
from pulumi.runtime import config as runtime_config

from .problems import InvalidInput
from .settings import PROJECT, Inputs, load_inputs

# Full collections once per 100 young-generation passes instead of 10 (docs/scale.md).
FULL_GC_EVERY = 100


def relax_gc() -> None:
    """Run full garbage collections a tenth as often while the program registers resources.

    Nearly everything the program and the SDK allocate for a resource (its Outputs and their
    futures, its inputs) lives until the program exits, so each full collection walks a
    growing heap and frees almost nothing. At 3,000 tenants the default thresholds ran 9 full
    collections, 1.5 s of a 4.9 s evaluation, and made the cost grow faster than linearly;
    relaxed, one ran (0.15 s of 3.0 s), for 2 MiB more peak memory (docs/scale.md).
    Young collections and the interpreter's own rule (no full collection before the long-lived
    heap has grown by a quarter) are unchanged.
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


def project_config() -> dict[str, str]:
    """Every `b2b-platform:*` key of the stack, so unknown keys can be reported, not ignored."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}


def read_inputs(root: str | None = None) -> Inputs:
    config = project_config()
    # Keys set with `pulumi config set --secret` (or holding a secret under --path).
    secrets = [key for key in config if runtime_config.is_config_secret(f"{PROJECT}:{key}")]
    try:
        return load_inputs(config, root=root or os.getcwd(), secret_keys=secrets)
    except InvalidInput as exc:
        # RunError prints its message without a traceback; nothing has been registered yet.
        raise pulumi.RunError(f"invalid b2b-platform input ({len(exc.problems)} problem(s)):\n{exc}") from None
