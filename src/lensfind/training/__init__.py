"""Training: architectures, data, training loop and metrics.

Importing ``lensfind.training`` needs no torch; the submodules that do
(``architectures``, ``loop``) raise a clear message if the ``train`` extra is
missing.
"""
