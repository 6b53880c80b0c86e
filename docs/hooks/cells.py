"""MkDocs hook: each `<!-- cell: NAME -->` in a page becomes that cell's heading and equations.

A cell's equations are written once, in its module under charlm/models/cells/ (its CellSpec);
the docs page of the cells shows them from there, so the page cannot drift from the code.
"""

from __future__ import annotations

import re
from typing import Any

from charlm.models import registry

MARKER = re.compile(r"<!-- cell: ([\w-]+) -->")


def section(name: str) -> str:
    """A cell's heading (anchored by its --model name) and its equations, in markdown."""
    spec = registry.get(name)
    # arithmatex reads a $$ block only as a paragraph of its own: part adjacent ones.
    equations = re.sub(r"\$\$\n\$\$", "$$\n\n$$", spec.equations.strip())
    return f"## {spec.title} (`--model {spec.name}`) {{#{spec.name}}}\n\n{equations}"


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: section(m.group(1)), markdown)
