"""The generic training loop and what it owns: phases, EMA, checkpoints, logs."""
