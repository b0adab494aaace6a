"""Thin console entry points: each converts a Hydra config and calls one stage."""
