"""Candidate science: expected purity from calibrated scores, the known-lens cross-match, plots."""
