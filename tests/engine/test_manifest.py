"""lensfind.engine.manifest: the append-only commit log."""

import json

from lensfind.engine.manifest import MANIFEST_NAME, Manifest


def _entry(shard_id: str, n: int = 3) -> dict:
    return {
        "shard_id": shard_id,
        "tile": "T",
        "input_fingerprint": "f" * 64,
        "model_sha256": "a" * 64,
        "counts": {"scored": n, "skipped": 0, "failed": 0},
        "scores_file": f"{shard_id}.parquet",
        "sha256": "0" * 64,
    }


def test_empty_run_has_nothing_committed(tmp_path):
    assert Manifest(tmp_path).committed() == {}


def test_commit_round_trip(tmp_path):
    m = Manifest(tmp_path)
    entries = [_entry("T-0000", 1), _entry("T-0001", 2), _entry("no-tile-0000", 3)]
    for e in entries:
        m.commit(e)
    assert m.path == tmp_path / MANIFEST_NAME
    assert Manifest(tmp_path).committed() == {e["shard_id"]: e for e in entries}
    lines = m.path.read_text().splitlines()
    assert len(lines) == 3
    assert [json.loads(line) for line in lines] == entries


def test_a_later_commit_of_the_same_shard_wins(tmp_path):
    m = Manifest(tmp_path)
    m.commit(_entry("T-0000", 1))
    m.commit(_entry("T-0000", 5))
    assert m.committed()["T-0000"]["counts"]["scored"] == 5


def test_torn_last_line_is_ignored_and_later_commits_parse(tmp_path):
    m = Manifest(tmp_path)
    m.commit(_entry("T-0000"))
    m.commit(_entry("T-0001"))
    torn = json.dumps(_entry("T-0002"), sort_keys=True)[:40]
    with open(m.path, "a") as f:  # a crash in the middle of a write: no newline
        f.write(torn)
    assert set(m.committed()) == {"T-0000", "T-0001"}

    m.commit(_entry("T-0003"))
    assert set(m.committed()) == {"T-0000", "T-0001", "T-0003"}
    lines = m.path.read_text().splitlines()
    assert lines[-2] == torn
    assert json.loads(lines[-1])["shard_id"] == "T-0003"


def test_torn_line_of_the_same_shard_recommitted(tmp_path):
    m = Manifest(tmp_path)
    m.commit(_entry("T-0000"))
    with open(m.path, "a") as f:
        f.write('{"counts": {"failed": 0, "sc')
    m.commit(_entry("T-0001"))
    assert set(m.committed()) == {"T-0000", "T-0001"}
