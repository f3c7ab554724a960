"""Every container image the platform runs, pinned to an exact tag.

A stack can override any entry with `b2b-platform:images` (same keys); an unknown key
is a validation error, so a typo never silently falls back to the default.
"""

IMAGES: dict[str, str] = {
    # Echo server that prints the request's Host header, so tenant routing is visible on kind.
    "compute-demo": "traefik/whoami:v1.10.3",
    # SeaweedFS release 4.44: master, volume, filer and S3 in one process (`weed mini`).
    "archive": "chrislusf/seaweedfs:4.44",
    # NATS server release v2.14.5, the official image's Alpine variant.
    "beacon": "nats:2.14.5-alpine",
    # Turns the NATS monitoring JSON into Prometheus metrics (release v0.20.1).
    "beacon-exporter": "natsio/prometheus-nats-exporter:0.20.1",
}
