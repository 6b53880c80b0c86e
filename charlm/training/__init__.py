"""The training loop, its setup, saved state, events, ranks, weight averaging."""
