"""Scoring text: nats and bits per character, the n-gram baseline, cold starts."""
