"""The scan engine: plan, cut, store, score and catalogue a survey (no torch needed)."""
