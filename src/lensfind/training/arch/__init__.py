"""Implementations of the network architectures (torch).

The public entry point is :mod:`lensfind.training.architectures` (the registry
and :func:`~lensfind.training.architectures.build_model`); the modules here hold
one architecture family each.
"""
