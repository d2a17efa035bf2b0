"""Throughput and memory benchmarks behind ``engine bench``.

``scan`` (end to end against the bare model), ``score`` (``engine score`` on a
store), ``models`` and ``runtimes`` (architectures x runtimes x batch sizes),
``datapath`` (each stage of the data path), ``kernels`` (perturbation kernels)
and ``report`` (the JSON + Markdown envelope every benchmark writes).
"""
