"""Training: data sets, losses, the loop, checkpoints, evaluation."""
