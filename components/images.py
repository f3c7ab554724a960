"""Every container image the platform runs, pinned to an exact tag.

A stack can override any entry with `b2b-platform:images` (same keys); an unknown key
is a validation error, so a typo never silently falls back to the default.
"""

IMAGES: dict[str, str] = {
    # Echo server that prints the request's Host header, so tenant routing is visible on kind.
    "compute-demo": "traefik/whoami:v1.10.3",
    # CloudNativePG 1.30's own defaults (pkg/versions/versions.go at v1.30.0), pinned here.
    "postgres": "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie",
    "pgbouncer": "ghcr.io/cloudnative-pg/pgbouncer:1.25.1",
}
