"""OU-T-SNE (Wilde et al. 2022, sec. 3.3): a t-SNE embedding of member scores, read off a grid.

``grid`` (pure functions of the grid classifier), ``model`` (the fitted
classifier, saved and loaded), ``run`` (fit and evaluate on simulated sets) and
``plot``.
"""
