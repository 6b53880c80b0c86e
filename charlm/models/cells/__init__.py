"""The cells charlm builds, one module each, registered in the order --model lists them.

A new cell is a module here defining its ``CellSpec`` (``charlm.models.registry``) and one
line below.
"""

from charlm.models.cells import esn, gru, jordan, lstm, narx, peephole, rnn, tdnn
from charlm.models.registry import register

for _cell in (lstm, gru, rnn, peephole, jordan, esn, tdnn, narx):
    register(_cell.SPEC)
