"""The networks: RNNLM, the cells, their hand-written time loops, precision."""
