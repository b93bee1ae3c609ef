"""Sweeps: config, the `sweep` command line, Ray Tune trials and MLflow tracking."""
