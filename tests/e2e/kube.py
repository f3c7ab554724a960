"""kubectl from the end-to-end check: is the cluster there, read objects and Secrets, port-forward."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import yaml

T = TypeVar("T")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stack_context(path: str = os.path.join(ROOT, "Pulumi.dev.yaml")) -> str:
    """The kube context the dev stack deploys to (`make up` creates the kind cluster it names)."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["config"]["kubernetes:context"]


CONTEXT = stack_context()


def eventually(
    check: Callable[[], T], deadline: float, what: str, interval: float = 5.0, clock=time.monotonic, sleep=time.sleep
) -> T:
    """`check()`'s result once it stops raising; after `deadline` seconds, fail with its last error.

    Right after `make up` operators are still reconciling, certificates being issued and metrics
    not yet scraped: each check polls for as long as that takes on kind, not a moment longer."""
    start = clock()
    while True:
        try:
            return check()
        # Refused connections, a pooler not yet serving, kubectl errors: all "not yet".
        except Exception as exc:
            waited = clock() - start
            if waited >= deadline:
                raise AssertionError(
                    f"{what}: still failing after {waited:.0f}s (deadline {deadline:.0f}s): {exc}"
                ) from exc
        sleep(interval)


def unreachable_reason(context: str = CONTEXT, timeout: int = 10) -> str | None:
    """Why the cluster can't be checked, or None when its API server answers."""
    if shutil.which("kubectl") is None:
        return "kubectl not found on PATH; the end-to-end check needs a running kind stack (make up)"
    contexts = subprocess.run(
        ["kubectl", "config", "get-contexts", "-o", "name"], capture_output=True, text=True, timeout=timeout
    )
    if context not in contexts.stdout.split():
        return f"no kube context {context!r} (create the cluster and stack with `make up`)"
    ready = subprocess.run(
        ["kubectl", "--context", context, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=timeout
    )
    if ready.returncode != 0:
        return f"the API server of {context!r} does not answer: {ready.stderr.strip() or ready.stdout.strip()}"
    return None


def kubectl(*args: str, context: str = CONTEXT, timeout: int = 60) -> str:
    done = subprocess.run(["kubectl", "--context", context, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def get_json(*args: str, context: str = CONTEXT) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json", context=context))


def secret_value(namespace: str, name: str, key: str, context: str = CONTEXT) -> str:
    data = get_json("secret", name, "-n", namespace, context=context).get("data", {})
    if key not in data:
        raise AssertionError(f"secret {namespace}/{name} has no key {key!r} (keys: {', '.join(sorted(data))})")
    return base64.b64decode(data[key]).decode()


FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def port_forward(namespace: str, target: str, remote_port: int, context: str = CONTEXT) -> Iterator[int]:
    """Forward a free local port to `target` (e.g. svc/name); yields the local port."""
    proc = subprocess.Popen(
        [
            "kubectl",
            "--context",
            context,
            "-n",
            namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            target,
            f":{remote_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = FORWARDING.search(line)
        if not match:
            raise AssertionError(
                f"port-forward to {namespace}/{target} failed: {line.strip()} "
                f"{proc.stderr.read() if proc.poll() is not None else ''}"
            )
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
