"""Looking inside models: recorded states, units, gradients, figures, the page."""
