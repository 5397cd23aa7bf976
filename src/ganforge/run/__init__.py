"""The run store, on the bottom floor: atomic files, checkpoints, config.yaml, opening a model source."""
