"""Evaluation: every metric (per language, means, routed, per page, calibration, AUROC)."""
