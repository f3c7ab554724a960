"""The Pulumi program's boundary: read stack config, validate, or stop before any resource."""

from __future__ import annotations

import os

import pulumi
from pulumi.runtime import config as runtime_config

from .problems import InvalidInput
from .settings import PROJECT, Inputs, load_inputs


def project_config() -> dict[str, str]:
    """Every `b2b-platform:*` key of the stack, so unknown keys can be reported, not ignored."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)}


def read_inputs(root: str | None = None) -> Inputs:
    config = project_config()
    # Keys set with `pulumi config set --secret` (or holding a secret under --path).
    secrets = [key for key in config if runtime_config.is_config_secret(f"{PROJECT}:{key}")]
    try:
        return load_inputs(config, root=root or os.getcwd(), secret_keys=secrets)
    except InvalidInput as exc:
        # RunError prints its message without a traceback; nothing has been registered yet.
        raise pulumi.RunError(f"invalid b2b-platform input ({len(exc.problems)} problem(s)):\n{exc}") from None
