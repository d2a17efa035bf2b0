"""deploy/slurm: the sbatch example passes start_cluster.py and `engine scan` only options they
accept."""

import importlib.util
import re
import shlex

import pytest


@pytest.fixture(scope="module")
def start_cluster(deploy_dir):
    spec = importlib.util.spec_from_file_location(
        "start_cluster", deploy_dir / "slurm" / "start_cluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports dask_jobqueue only when a cluster is made
    return module


@pytest.fixture(scope="module")
def sbatch(deploy_dir):
    return (deploy_dir / "slurm" / "lensfind-scan.sbatch").read_text()


def test_start_cluster_accepts_the_sbatch_options(start_cluster, sbatch):
    call = re.search(r"^python deploy/slurm/start_cluster.py(.*?)&$", sbatch, re.M | re.S)
    assert call
    text = call.group(1).replace("\\\n", " ")
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)  # ${VAR:-default} -> default
    text = re.sub(r"\$\{?\w+\}?", "/shared/x", text)  # other variables: some path
    args = shlex.split(text)
    parsed = start_cluster.parse_args(args)
    assert parsed.address_file is not None
    assert len(parsed.prologue) == 2
    with pytest.raises(SystemExit):
        start_cluster.parse_args(["--no-such-option"])


def test_scan_options_are_accepted(sbatch, scan_flags):
    lines = re.findall(r"args\+?=\((.*?)\)", sbatch, flags=re.S)
    assert lines
    flags = {t for line in lines for t in shlex.split(line) if t.startswith("--")}
    assert {"--scheduler", "--metrics-port", "--metrics-host", "--pushgateway"} <= flags
    assert sorted(flags - scan_flags) == []


def test_workers_retire_before_the_walltime(start_cluster):
    args = start_cluster.parse_args(["--walltime", "04:00:00"])
    extra = start_cluster.worker_args(args)
    assert extra[extra.index("--lifetime") + 1] == f"{4 * 3600 - 600}s"
    assert "--resources" not in extra
    assert start_cluster.walltime_seconds("1-02:00:00") == 26 * 3600
    assert start_cluster.walltime_seconds("00:30") == 1800
    with pytest.raises(SystemExit):
        start_cluster.worker_args(start_cluster.parse_args(["--walltime", "00:12:00"]))


def test_gpu_jobs_advertise_the_gpu_resource(start_cluster):
    args = start_cluster.parse_args(["--gpus-per-job", "1", "--walltime", "02:00:00"])
    extra = start_cluster.worker_args(args)
    assert extra[extra.index("--resources") + 1] == "GPU=1"
    with pytest.raises(SystemExit):
        start_cluster.parse_args(["--gpus-per-job", "2"])
