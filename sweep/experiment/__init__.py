"""One experiment: training, test curves and checkpoints of deployed models, without Ray or MLflow.
Floor 2 of `sweep`: imports `sweep.config` only."""

from sweep.experiment.checkpoint import MODEL_FILE, load_checkpoint, safe_load, save_checkpoint
from sweep.experiment.deploy import SettingResult, deploy_curves, deploy_metrics, flatness
from sweep.experiment.run import clean_test_accuracy, run_training, test_curve

__all__ = [
    "MODEL_FILE",
    "SettingResult",
    "clean_test_accuracy",
    "deploy_curves",
    "deploy_metrics",
    "flatness",
    "load_checkpoint",
    "run_training",
    "safe_load",
    "save_checkpoint",
    "test_curve",
]
