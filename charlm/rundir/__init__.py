"""A run directory: checkpoints, the log, the lock, crash recovery, atomic writes."""
