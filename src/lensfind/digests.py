"""Content digests of input files, computed once and cached by file identity.

A scan's resume fingerprint must change when any byte of an input changes,
without re-reading terabytes of tiles on every ``--resume``. :func:`file_digest`
streams a file through sha256 (about 1 GB/s on one core) once and records the
digest in ``$LENSFIND_CACHE/digests.jsonl`` under the file's identity: absolute
path, size, modification and status-change times (ns) and inode. Rewriting a
file's pixels at the same size changes its modification and status-change
times, so the digest is computed again; restoring the modification time
(``touch -r``) still changes the status-change time, which user programs
cannot set. A file changed less than :data:`RACY_NS` before its digest is
computed is not cached: file times tick in steps of a few milliseconds, so a
second write within the same tick would leave its identity unchanged.
"""

import json
import os
import time
from pathlib import Path

from lensfind.cache import cache_dir
from lensfind.hashing import sha256_of

DIGESTS_NAME = "digests.jsonl"
#: a file changed this recently (ns) is hashed again next time (its times may not tick)
RACY_NS = 2_000_000_000
_MEMO: dict[tuple[str, int, int, int, int], str] = {}
_LOADED: set[Path] = set()


def file_identity(path: Path) -> tuple[str, int, int, int, int]:
    """``(absolute path, size in bytes, mtime ns, ctime ns, inode)`` of ``path``."""
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _load(cache: Path) -> None:
    """Read the cache's complete lines into the memo (once per process and cache)."""
    if cache in _LOADED:
        return
    _LOADED.add(cache)
    try:
        lines = cache.read_text().splitlines()
    except OSError:  # no cache yet, or unreadable: digests are computed
        return
    for line in lines:
        try:
            entry = json.loads(line)
            _MEMO[tuple(entry["id"])] = entry["sha256"]  # type: ignore[index]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a torn line from a killed process


def file_digest(path: Path) -> str:
    """Hex sha256 of the bytes of ``path``, from the cache when the file is unchanged.

    The cache is best effort: a cache directory that cannot be written only
    means the digest is computed again next time.
    """
    key = file_identity(path)
    cache = cache_dir() / DIGESTS_NAME
    _load(cache)
    if key in _MEMO:
        return _MEMO[key]
    digest = sha256_of(path)
    if file_identity(path) != key or time.time_ns() - max(key[2], key[3]) < RACY_NS:
        return digest  # changed while read, or too recently to tell a change from its times
    _MEMO[key] = digest
    try:
        with open(cache, "a") as f:
            f.write(json.dumps({"id": list(key), "sha256": digest}) + "\n")
    except OSError:
        pass
    return digest
