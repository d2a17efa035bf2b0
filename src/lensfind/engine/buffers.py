"""Per-thread scratch arrays reused from shard to shard.

A shard needs arrays of tens to hundreds of MB (its stamps, their float16
encoding). Allocated afresh, each would be mapped and zeroed page by page by
the kernel, every shard: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_``
set, which makes glibc map every allocation over 128 kB anew. A worker keeps
one array per purpose instead, grown to the largest shard it has seen, so its
memory stays bounded by the largest shard.
"""

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """This thread's ``name`` array, viewed as ``shape`` (first axis at least as long).

    Its contents are whatever the last user left. The array is reallocated
    (with 25% headroom on the first axis) only when ``shape`` does not fit.
    """
    store: dict[str, np.ndarray] = _LOCAL.__dict__.setdefault("arrays", {})
    buf = store.get(name)
    dtype = np.dtype(dtype)
    if buf is None or buf.dtype != dtype or buf.shape[1:] != shape[1:] or len(buf) < shape[0]:
        store.pop(name, None)  # free the old one first
        rows = max(shape[0], int(1.25 * len(buf)) if buf is not None else 0, 1)
        buf = store[name] = np.empty((rows, *shape[1:]), dtype=dtype)
    return buf[: shape[0]]
