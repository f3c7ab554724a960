"""The WAF tier's ModSecurity, run for real: libmodsecurity (PyPI wheel `libmodsecurity`) with
the configuration the `owasp/modsecurity-crs` nginx image writes at start-up from our env.

Nothing upstream is vendored. Two source trees are read from the machine when present:
- `WAF_IMAGE_SRC`: coreruleset/modsecurity-crs-docker at the tag that built the pinned image
  (release/20260804 built `4.28.0-nginx-202608050608`: docker-bake.hcl there says CRS 4.28.0,
  ModSecurity 3.0.16, nginx 1.30.4);
- `CRS_DIR`: coreruleset/coreruleset at v4.28.0 (`crs-setup.conf.example`, `rules/`).
No registry ships CRS 4.x (Debian bookworm's `modsecurity-crs` is 3.3.4; PyPI and npm have
none), so tests that need these skip where they are absent, CI included, and say so.

What the image does, step by step (paths in modsecurity-crs-docker at release/20260804):
- nginx/Dockerfile: `ENV` defaults, `COPY src/etc/modsecurity.d/*.conf` → templates under
  /etc/nginx/templates/modsecurity.d, and `configure-rules.sh` as /docker-entrypoint.d/95-...;
- the nginx base image renders every `*.template` with envsubst, defined variables only;
- nginx/docker-entrypoint.d/90-copy-modsecurity-config.sh copies the rendered files to
  /etc/modsecurity.d; src/opt/modsecurity/configure-rules.sh edits crs-setup.conf from the env
  (`configure-rules.v4.conf` maps ALLOWED_METHODS → 900200 and so on);
- src/etc/modsecurity.d/setup.conf includes modsecurity.conf, modsecurity-override.conf,
  crs-setup.conf and rules/*.conf, in that order (nginx/templates/conf.d/modsecurity.conf.template
  loads setup.conf).
The harness does the same, except that the audit log, data and temp paths point into a temporary
directory and `SecUnicodeMapFile` is dropped (the image downloads unicode.mapping at build time;
it only matters for %u-encoded input). libmodsecurity here is 3.0.15, the image's 3.0.16.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import unavailable

IMAGE_TAG = "release/20260804"
CRS_TAG = "v4.28.0"


def sources() -> tuple[Path, Path]:
    """(image source, CRS) trees, or skip: they cannot come from a package registry."""
    try:
        import libmodsecurity  # noqa: F401
    except ImportError:
        # requirements-dev.txt pins the wheel: missing, it fails on CI.
        unavailable("libmodsecurity (PyPI wheel) is not installed")
    image, crs = os.environ.get("WAF_IMAGE_SRC"), os.environ.get("CRS_DIR")
    if not image or not crs or not Path(image, "nginx/Dockerfile").is_file() or not Path(crs, "rules").is_dir():
        pytest.skip(
            f"set WAF_IMAGE_SRC (coreruleset/modsecurity-crs-docker at {IMAGE_TAG}) and CRS_DIR "
            f"(coreruleset/coreruleset at {CRS_TAG}): no package registry ships CRS 4.x"
        )
    return Path(image), Path(crs)


def image_env(image_src: Path) -> dict[str, str]:
    """The final stage's `ENV` block of nginx/Dockerfile, as the container sees it."""
    text = (image_src / "nginx/Dockerfile").read_text()
    block = text[text.rindex("\nENV \\\n") :]
    env: dict[str, str] = {}
    for line in block.splitlines()[2:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        m = re.match(r"([A-Z0-9_]+)=(.*?)\s*\\?$", stripped)
        if not m:
            break
        (env[m.group(1)],) = shlex.split(m.group(2)) or [""]
        if not line.rstrip().endswith("\\"):
            break
    return env


def envsubst(text: str, env: dict[str, str]) -> str:
    """nginx image's 20-envsubst-on-templates.sh: `envsubst "$defined_envs"` (only defined names)."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class Verdict:
    status: int
    rules: list[int] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.status >= 400


class Waf:
    """ModSecurity configured as the image configures it from `env` (ours over its defaults)."""

    def __init__(self, env: dict[str, str], override: str, workdir: Path):
        from libmodsecurity import ModSecurity, RulesSet

        image_src, crs = sources()
        full = {**image_env(image_src), **env}
        conf = workdir / "modsecurity.d"
        (conf / "owasp-crs").mkdir(parents=True)
        shutil.copy(crs / "crs-setup.conf.example", conf / "owasp-crs/crs-setup.conf")
        (conf / "owasp-crs/rules").symlink_to((crs / "rules").resolve())
        self.audit = workdir / "audit.log"
        for d in ("data", "tmp", "upload"):
            (workdir / d).mkdir()
        full.update(
            MODSEC_AUDIT_LOG=str(self.audit),
            MODSEC_DATA_DIR=str(workdir / "data"),
            MODSEC_TMP_DIR=str(workdir / "tmp"),
            MODSEC_UPLOAD_DIR=str(workdir / "upload"),
            MODSEC_AUDIT_STORAGE_DIR=str(workdir),
            CONFIG_FILE=str(conf / "owasp-crs/crs-setup.conf"),
        )
        scripts = workdir / "scripts"
        scripts.mkdir()
        for name in ("configure-rules.sh", "configure-rules.v4.conf"):
            shutil.copy(image_src / "src/opt/modsecurity" / name, scripts / name)
        run = subprocess.run(
            ["sh", str(scripts / "configure-rules.sh")], env={"PATH": os.environ["PATH"], **full}, capture_output=True
        )
        assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
        self.configure_log = run.stdout.decode()
        modsec = envsubst((image_src / "src/etc/modsecurity.d/modsecurity.conf").read_text(), full)
        modsec = re.sub(r"(?m)^SecUnicodeMapFile .*$", "", modsec)
        (conf / "modsecurity.conf").write_text(modsec)
        (conf / "modsecurity-override.conf").write_text(envsubst(override, full))
        setup = (image_src / "src/etc/modsecurity.d/setup.conf").read_text().replace("/etc/modsecurity.d", str(conf))
        (conf / "setup.conf").write_text(setup)
        self.modsec = ModSecurity()
        self.rules = RulesSet()
        loaded = self.rules.load_from_uri(str(conf / "setup.conf"))
        assert loaded >= 0, self.rules.get_parser_error()

    def request(
        self,
        method: str,
        uri: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        client: str = "203.0.113.7",
        response: tuple[int, str, bytes] | None = None,
    ) -> Verdict:
        """One transaction through phases 1-5; `response` = (status, content type, body) from the API."""
        with self.modsec.transaction(self.rules) as tx:
            tx.process_connection(client, 40000, "10.244.0.20", 8080)
            tx.process_uri(uri, method, "1.1")
            sent = {"Host": "acme.app.acme.io", "User-Agent": "acme-sdk/2.3 python-httpx/0.28", "Accept": "*/*"}
            sent.update(headers or {})
            if body:
                sent.setdefault("Content-Length", str(len(body)))
            for k, v in sent.items():
                tx.add_request_header(k, v)
            stop = self._step(tx, tx.process_request_headers)
            if stop is None and body:
                tx.append_request_body(body)
            stop = stop or self._step(tx, tx.process_request_body)
            if stop is None and response:
                status, ctype, payload = response
                tx.add_response_header("Content-Type", ctype)
                tx.add_response_header("Content-Length", str(len(payload)))
                stop = self._step(tx, lambda: tx.process_response_headers(status, "HTTP/1.1"))
                if stop is None:
                    tx.append_response_body(payload)
                    stop = self._step(tx, tx.process_response_body)
            rules = sorted({m.rule_id for m in tx.get_rule_messages()})
        return Verdict(stop or 200, rules)

    @staticmethod
    def _step(tx, call) -> int | None:
        call()
        it = tx.intervention()
        return it.status if it is not None and it.disruptive else None
