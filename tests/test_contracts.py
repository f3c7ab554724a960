import json

from conftest import revealed, seed

from components.blueprint import parse_blueprint
from components.contracts import Refs


def test_refs_of_seed_name_every_backing_layer():
    refs = Refs.of(parse_blueprint(seed()))
    assert refs.namespace == "saas-net"
    assert refs.database.pooler_service == "platform-db-pooler-rw"
    assert refs.database.app_secret == "platform-db-app"
    assert refs.database.selector == {"cnpg.io/cluster": "platform-db"}
    assert refs.object_store.endpoint == "http://tenant-files.saas-net.svc.cluster.local:8333"
    assert refs.object_store.credentials_secret == "tenant-files-s3"
    assert refs.broker.url == "nats://lifecycle.saas-net.svc.cluster.local:4222"
    assert refs.metrics.url == "http://prometheus-operated.saas-net.svc.cluster.local:9090"


def test_absent_layers_have_no_ref():
    bp = seed()
    bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] in ("fabric", "compute")]
    refs = Refs.of(parse_blueprint(bp))
    assert (refs.database, refs.object_store, refs.broker, refs.metrics) == (None, None, None, None)


def test_every_in_cluster_address_follows_the_cluster_domain(render):
    """A cluster whose kubelets use another `clusterDomain` resolves only `<svc>.<ns>.svc.<domain>`."""
    rendered = render({"clusterDomain": "k8s.internal"})
    text = json.dumps([revealed(r.inputs) for r in rendered.run.mocks.resources])
    assert "cluster.local" not in text
    # The addresses written into pods, the broker's routes, NACK's Account and the backup endpoint.
    assert "platform-db-pooler-rw.saas-net.svc.k8s.internal" in text
    assert "lifecycle-0.lifecycle-headless.saas-net.svc.k8s.internal:6222" in text
    assert rendered.get("Account", "lifecycle")["spec"]["servers"] == [
        "nats://lifecycle.saas-net.svc.k8s.internal:4222"
    ]
    assert (
        rendered.get("ObjectStore", "platform-db-backups")["spec"]["configuration"]["endpointURL"]
        == "http://tenant-files.saas-net.svc.k8s.internal:8333"
    )
