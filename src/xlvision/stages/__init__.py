"""Pipeline stages: pure functions `stage(cfg) -> (metrics, artifacts)`."""
