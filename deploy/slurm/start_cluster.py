"""Start a Dask cluster on SLURM for ``engine scan --scheduler ADDRESS`` (dask-jobqueue).

Runs the Dask scheduler in this process and submits SLURM jobs that each start Dask workers;
prints the scheduler address (and writes it to ``--address-file``) and then waits until it is
interrupted (Ctrl-C, SIGTERM, or the end of the enclosing batch job), when it cancels the
worker jobs. Needs ``pip install dask-jobqueue`` in the lensfind environment, and that
environment, the survey data and the run directory on a file system every node sees.

Example (see lensfind-scan.sbatch for the whole scan in one batch job)::

    python deploy/slurm/start_cluster.py --jobs 4 --cores 16 --memory 64GiB \\
        --walltime 08:00:00 --account astro --prologue "source $PWD/.venv/bin/activate"
    engine scan --scheduler tcp://10.1.2.3:8786 --data /shared/des_y3 --out /shared/runs/y3 \\
        --metrics-port 9450 --metrics-host 0.0.0.0

Workers retire before their job's walltime ends (``dask worker --lifetime``, walltime minus
``--lifetime-margin``, staggered), so a shard is never cut off by SLURM: the scheduler moves
work off a retiring worker, and a shard that was killed anyway is retried and, after
``--shard-attempts`` crashes, quarantined. On GPU nodes, ``--gpus-per-job 1`` gives each job
one GPU and one worker that advertises ``--resources GPU=1``; the scan then sends every shard to
a GPU worker, one at a time per GPU (submit more jobs for more GPUs).

``--dry-run`` prints the batch script that would be submitted and exits.
"""

import argparse
import signal
import sys
import threading
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2, help="SLURM jobs to submit (default 2)")
    p.add_argument("--cores", type=int, default=8, help="CPU cores per job (default 8)")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="Dask worker processes per job (default: one per core, one thread each, as the "
        "scan's local cluster does)",
    )
    p.add_argument("--memory", default="32GiB", help="memory per job (default 32GiB)")
    p.add_argument("--walltime", default="04:00:00", help="per job, HH:MM:SS (default 04:00:00)")
    p.add_argument("--queue", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument(
        "--gpus-per-job",
        type=int,
        default=0,
        choices=(0, 1),
        help="1: #SBATCH --gres=gpu:1 and one worker advertising the GPU resource",
    )
    p.add_argument(
        "--lifetime-margin",
        type=int,
        default=10,
        help="minutes before the walltime at which workers retire (default 10)",
    )
    p.add_argument(
        "--job-extra",
        action="append",
        default=[],
        metavar="DIRECTIVE",
        help="extra #SBATCH directive, e.g. --job-extra=--constraint=haswell (repeatable)",
    )
    p.add_argument(
        "--prologue",
        action="append",
        default=[],
        metavar="LINE",
        help="shell line run before each worker starts, e.g. 'source /path/.venv/bin/activate' "
        "(repeatable)",
    )
    p.add_argument("--interface", default=None, help="network interface, e.g. ib0")
    p.add_argument("--local-directory", default=None, help="worker scratch, e.g. $TMPDIR")
    p.add_argument("--log-directory", default=None, help="where the worker jobs' logs go")
    p.add_argument("--address-file", type=Path, default=None, help="write the address here")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit")
    return p.parse_args(argv)


def walltime_seconds(walltime: str) -> int:
    """``[D-]HH:MM:SS`` (or ``HH:MM``) as seconds."""
    days, _, clock = walltime.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.append(0)
    h, m, s = parts
    return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s


def worker_args(args: argparse.Namespace) -> list[str]:
    """Extra ``dask worker`` arguments: a lifetime shorter than the walltime, the GPU resource."""
    lifetime = walltime_seconds(args.walltime) - 60 * args.lifetime_margin
    if lifetime < 300:
        sys.exit(
            f"walltime {args.walltime} leaves under 5 minutes after the "
            f"{args.lifetime_margin}-minute lifetime margin"
        )
    extra = ["--lifetime", f"{lifetime}s", "--lifetime-stagger", "120s"]
    if args.gpus_per_job:
        extra += ["--resources", "GPU=1"]
    return extra


def make_cluster(args: argparse.Namespace):  # -> dask_jobqueue.SLURMCluster
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        sys.exit("start_cluster.py needs dask-jobqueue: pip install dask-jobqueue")
    job_extra = list(args.job_extra)
    if args.gpus_per_job:
        job_extra.append(f"--gres=gpu:{args.gpus_per_job}")
    processes = 1 if args.gpus_per_job else args.processes or args.cores
    return SLURMCluster(
        cores=args.cores,
        processes=processes,
        worker_extra_args=worker_args(args),
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        interface=args.interface,
        local_directory=args.local_directory,
        log_directory=args.log_directory,
        job_name="lensfind-dask",
        job_extra_directives=job_extra,
        job_script_prologue=list(args.prologue),
        scheduler_options={"dashboard_address": ":8787"},
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cluster = make_cluster(args)
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        address = cluster.scheduler_address
        print(f"scheduler: {address}", flush=True)
        print(f"dashboard: {cluster.dashboard_link}", flush=True)
        print(
            f"run: engine scan --scheduler {address} --metrics-port 9450 --metrics-host 0.0.0.0 "
            "--out RUN_DIR ...",
            flush=True,
        )
        if args.address_file is not None:
            tmp = args.address_file.with_name(args.address_file.name + ".tmp")
            tmp.write_text(address + "\n")
            tmp.replace(args.address_file)  # readers never see a partial address
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        print("stopping: cancelling the worker jobs", flush=True)
        return 0
    finally:
        cluster.close()
        if args.address_file is not None:
            args.address_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
