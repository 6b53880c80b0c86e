"""charlm's benchmark suite: `python -m bench [--quick]` (results: docs/records/).

A section is a module ``bench/NAME.py`` named in ``SECTIONS`` (bench/__main__.py) with

    def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]

returning its figures (rows as a list of dicts become a table). Three sizes, looked up by
``bench.modes.mode(quick, smoke)``:

- full: what the records in docs/records/ are measured with;
- quick (``--quick``): every section in short form, the suite within the time its help gives;
- smoke (``--smoke``, and the test suite): the same code path end to end, every subprocess and
  writer included, at the smallest sizes that still take it: a few seconds of CPU. It writes
  only into temporary directories (never bench/results/ or docs/) and is not a measurement.

tests/bench/test_sections_smoke.py runs every section in SECTIONS in smoke mode, so a section
that breaks fails `make test`; a new section is covered by being listed. A section returns
``{"skipped": reason}`` only for something outside the code (a corpus, a package or a peer's
code absent), and an ``"error"`` key, at any depth, fails the test. Sections call charlm's
public API only: nothing named with a leading underscore.
"""
