"""Every container image the platform runs, pinned to an exact tag.

A stack can override any entry with `b2b-platform:images` (same keys); an unknown key
is a validation error, so a typo never silently falls back to the default.
"""

IMAGES: dict[str, str] = {
    # Echo server that prints the request's Host header, so tenant routing is visible on kind.
    "compute-demo": "traefik/whoami:v1.10.3",
    # OWASP CRS 4.28.0 on ModSecurity 3.0.16 + nginx 1.30.4 (nginxinc/nginx-unprivileged, uid 101).
    "sentinel": "owasp/modsecurity-crs:4.28.0-nginx-202608050608",
    # The Prometheus Operator 0.93 default (its compatibility matrix ends at this LTS line).
    "prometheus": "quay.io/prometheus/prometheus:v3.13.1",
    # CloudNativePG 1.30's own defaults (pkg/versions/versions.go at v1.30.0), pinned here.
    "postgres": "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie",
    "pgbouncer": "ghcr.io/cloudnative-pg/pgbouncer:1.25.1",
    # oauth2-proxy v7.15.3, distroless (gcr.io/distroless/static:nonroot, uid 65532): the admin UI's login proxy.
    "sso": "quay.io/oauth2-proxy/oauth2-proxy:v7.15.3",
    # SeaweedFS release 4.44: master, volume, filer and S3 in one process (`weed mini`).
    "archive": "chrislusf/seaweedfs:4.44",
    # NATS server release v2.14.5, the official image's Alpine variant.
    "beacon": "nats:2.14.5-alpine",
    # Turns the NATS monitoring JSON into Prometheus metrics (release v0.20.1).
    "beacon-exporter": "natsio/prometheus-nats-exporter:0.20.1",
}
