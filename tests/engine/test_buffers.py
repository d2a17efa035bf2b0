"""lensfind.engine.buffers: per-thread scratch arrays."""

import threading

import numpy as np
import pytest

from lensfind.engine.buffers import scratch


def test_scratch_is_reused_and_grows_with_headroom():
    a = scratch("t1", (10, 2, 3), np.float32)
    assert a.shape == (10, 2, 3) and a.dtype == np.float32
    b = scratch("t1", (4, 2, 3), np.float32)
    assert np.shares_memory(a, b)  # smaller: a view of the same array
    c = scratch("t1", (11, 2, 3), np.float32)
    assert c.shape == (11, 2, 3) and not np.shares_memory(a, c)
    d = scratch("t1", (12, 2, 3), np.float32)
    assert np.shares_memory(c, d)  # 25% headroom: 10 -> 12.5 rows
    e = scratch("t1", (3, 5, 3), np.float32)  # another shape: a new array
    assert e.shape == (3, 5, 3) and not np.shares_memory(d, e)
    assert scratch("t1", (3, 5, 3), np.uint16).dtype == np.uint16


def test_each_thread_has_its_own():
    mine = scratch("t2", (5,), np.int64)
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(scratch("t2", (5,), np.int64)))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])


def test_empty_shapes():
    assert scratch("t3", (0, 4), np.float32).shape == (0, 4)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_warm_up_grows_this_threads_scan_buffers_to_the_shard_size(model_dir, compression):
    """A worker's first shard finds its stamp buffer and image file already full size."""
    from lensfind.engine import buffers
    from lensfind.engine.scoring import warm_up
    from lensfind.runtime.card import load_card

    card = load_card(model_dir)
    warm_up(str(model_dir), card.sha256, "cpu", 4, "float16", 40, compression)
    arrays = buffers._LOCAL.arrays
    assert len(arrays["stamps"]) >= 40
    item = int(np.prod(card.input_shape)) * 2  # float16 bytes of one cutout
    held = arrays["shard_file" if compression == "none" else "shard_chunks"]
    assert len(held) >= 40 * item
