from conftest import seed

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
