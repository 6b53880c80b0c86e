"""Generating text: loading a model, steppers, NumPy cells, sampling, the id loop."""
