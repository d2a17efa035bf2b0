"""deploy/kubernetes: the manifests parse and fit together (scheduler Service name and port,
image, shared volume, metrics Service selecting the scan pod) and the scan Job passes only
flags that `engine scan --help` lists. No cluster is needed (and none is contacted)."""

import pytest
import yaml


@pytest.fixture(scope="module")
def docs(deploy_dir):
    out = {}
    for path in sorted((deploy_dir / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def _port(container, name):
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return port


def test_kinds(docs):
    assert set(docs) == {
        ("DaskCluster", "lensfind"),
        ("Job", "lensfind-scan"),
        ("Service", "lensfind-scan-metrics"),
        ("PersistentVolumeClaim", "lensfind-data"),
        ("DaskWorkerGroup", "lensfind-gpu"),
    }
    assert docs["DaskCluster", "lensfind"]["apiVersion"] == "kubernetes.dask.org/v1"


def test_scan_job_connects_to_the_cluster_scheduler(docs, scan_flags):
    cluster = docs["DaskCluster", "lensfind"]
    (scheduler,) = cluster["spec"]["scheduler"]["spec"]["containers"]
    service = cluster["spec"]["scheduler"]["service"]
    (comm,) = [p for p in service["ports"] if p["name"] == "tcp-comm"]
    assert comm["targetPort"] == "tcp-comm"
    assert _port(scheduler, "tcp-comm") == int(
        scheduler["args"][scheduler["args"].index("--port") + 1]
    )

    job = docs["Job", "lensfind-scan"]
    (scan,) = job["spec"]["template"]["spec"]["containers"]
    args = scan["args"]
    assert args[0] == "scan"
    # The operator names the scheduler Service "<cluster name>-scheduler".
    expected = f"tcp://{cluster['metadata']['name']}-scheduler:{comm['port']}"
    assert args[args.index("--scheduler") + 1] == expected
    assert sorted({a.split("=")[0] for a in args if a.startswith("--")} - scan_flags) == []
    (worker,) = cluster["spec"]["worker"]["spec"]["containers"]
    assert scan["image"] == worker["image"] == scheduler["image"]
    assert worker["command"] == ["dask", "worker"]
    assert scheduler["command"] == ["dask", "scheduler"]


def test_scan_and_workers_share_the_data_volume(docs):
    claim = docs["PersistentVolumeClaim", "lensfind-data"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    cluster = docs["DaskCluster", "lensfind"]
    pods = [
        cluster["spec"]["worker"]["spec"],
        docs["Job", "lensfind-scan"]["spec"]["template"]["spec"],
    ]
    for pod in pods:
        (volume,) = pod["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {volume["name"]: "/data"}
        assert pod["securityContext"]["runAsNonRoot"] is True
    args = docs["Job", "lensfind-scan"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--out") + 1].startswith("/data/")


def test_metrics_service_selects_the_scan_pod(docs):
    job = docs["Job", "lensfind-scan"]
    template = job["spec"]["template"]
    service = docs["Service", "lensfind-scan-metrics"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    (scan,) = template["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    args = scan["args"]
    assert int(args[args.index("--metrics-port") + 1]) == _port(scan, port["targetPort"])
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0"
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(port["port"])


def test_gpu_workers_advertise_one_gpu_each(docs):
    from lensfind.engine.cluster import GPU_RESOURCE

    group = docs["DaskWorkerGroup", "lensfind-gpu"]
    assert group["spec"]["cluster"] == docs["DaskCluster", "lensfind"]["metadata"]["name"]
    (worker,) = group["spec"]["worker"]["spec"]["containers"]
    args = worker["args"]
    assert args[args.index("--resources") + 1] == f"{GPU_RESOURCE}=1"
    assert args[args.index("--nthreads") + 1] == "1"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["image"] == "lensfind:gpu"
    (volume,) = group["spec"]["worker"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == "lensfind-data"
