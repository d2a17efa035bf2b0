"""Probes: what a model is sensitive to and what a scan could have found.

- :mod:`lensfind.probes.kernels`: batched perturbation kernels (numba).
- :mod:`lensfind.probes.stats`: binned correct-class score statistics and trends.
- :mod:`lensfind.probes.sensitivity`: the sensitivity probe (Jacobs et al. 2022).
- :mod:`lensfind.probes.selection`: injection-recovery selection functions.
- :mod:`lensfind.probes.saliency`: saliency maps for torch models.
"""
