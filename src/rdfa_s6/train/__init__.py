"""Training: label assignment, losses, optimiser and schedule, EMA, the loop, run folders."""
