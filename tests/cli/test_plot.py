"""`charlm plot`: the series handed to the plotting layer are the metrics file's values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli import plot as plot_cli
from charlm.inspection.textplot import curves_text
from charlm.rundir import lock as runlock
from charlm.rundir.read import MetricsError, read_curves


def _rows(scale: float) -> list[dict]:
    rows = []
    for step in range(1, 9):
        row = {
            "step": step,
            "tokens_seen": 100 * step,
            "elapsed": 0.5 * step,
            "train_loss": scale * (4 - 0.3 * step),
            "lr": 0.01 * step,
            "grad_norm": 1.0 / step,
        }
        rows.append(row)
        if step % 4 == 0:  # an evaluation row repeats the running train loss
            rows.append({**row, "lr": None, "grad_norm": None, "val_bpc": scale * (5 - step / 4)})
    for row in rows:
        for k in [k for k, v in row.items() if v is None]:
            del row[k]
    return rows


def _run_dir(tmp_path: Path, name: str, scale: float, tail: str = "") -> Path:
    run = tmp_path / name
    run.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in _rows(scale)) + tail
    (run / "metrics.jsonl").write_text(text)
    return run


def test_series_equal_the_file_and_a_half_written_line_is_skipped(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a", 1.0, tail='{"step": 9, "tokens_se')
    curves = read_curves(run)
    steps = [r for r in _rows(1.0) if "val_bpc" not in r]
    evals = [r for r in _rows(1.0) if "val_bpc" in r]
    assert curves.name == "a" and curves.skipped == 1
    assert curves.series["train_loss"].x == [r["tokens_seen"] for r in steps]
    assert curves.series["train_loss"].y == [r["train_loss"] for r in steps]
    assert curves.series["lr"].y == [r["lr"] for r in steps]
    assert curves.series["grad_norm"].y == [r["grad_norm"] for r in steps]
    assert curves.series["val_bpc"].x == [400.0, 800.0]
    assert curves.series["val_bpc"].y == [r["val_bpc"] for r in evals]
    assert read_curves(run, "time").series["val_bpc"].x == [2.0, 4.0]


def test_cli_hands_the_files_values_to_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_run_dir(tmp_path, "a", 1.0), _run_dir(tmp_path, "b", 2.0)]
    seen = {}

    def capture(curves, path, width, height):
        seen.update(curves=curves, path=path, size=(width, height))

    monkeypatch.setattr(plot_cli, "curves_figure", capture)
    out = str(tmp_path / "c.png")
    r = CliRunner().invoke(app, ["plot", *map(str, runs), "--x", "time", "-o", out])
    assert r.exit_code == 0, r.output
    assert [c.name for c in seen["curves"]] == ["a", "b"]
    b = seen["curves"][1]
    assert b.series["val_bpc"].y == [2.0 * (5 - 1), 2.0 * (5 - 2)]
    assert b.series["val_bpc"].x == [2.0, 4.0]  # elapsed seconds
    assert seen["size"] == (1000, 800) and r.stdout == ""


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_image_is_valid_and_of_the_requested_size(tmp_path: Path, suffix: str) -> None:
    runs = [_run_dir(tmp_path, "a", 1.0), _run_dir(tmp_path, "b", 2.0)]
    out = tmp_path / f"curves{suffix}"
    args = ["plot", *map(str, runs), "-o", str(out), "--width", "640", "--height", "480"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    if suffix == ".png":
        with Image.open(out) as im:
            im.verify()
        with Image.open(out) as im:
            assert im.format == "PNG" and im.size == (640, 480)
    else:
        svg = out.read_text()
        assert svg.lstrip().startswith("<?xml") and 'width="460.8pt"' in svg  # 640 px at 72/100


def test_on_a_trained_run(trained_run: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["plot", str(trained_run), "-o", str(tmp_path / "t.png")])
    assert r.exit_code == 0, r.output
    curves = read_curves(trained_run)
    assert len(curves.series["val_bpc"].y) == 2 and curves.series["grad_norm"].y


def test_without_o_and_no_terminal_says_to_use_o(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["plot", str(_run_dir(tmp_path, "a", 1.0))])
    assert r.exit_code == 1
    assert r.stderr == (
        "charlm: error: stdout is not a terminal: write an image with -o plot.png (or plot.svg)\n"
    )


def test_missing_run_and_unknown_x_are_one_line_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["plot", str(tmp_path / "none"), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and r.stderr.startswith("charlm: error: ")
    assert "no metrics.jsonl there" in r.stderr and r.stderr.count("\n") == 1
    with pytest.raises(MetricsError, match="unknown --x 'steps'"):
        read_curves(_run_dir(tmp_path, "a", 1.0), "steps")


def test_text_plot_names_the_runs_and_fits_the_size(tmp_path: Path) -> None:
    curves = [read_curves(_run_dir(tmp_path, n, s)) for n, s in (("alpha", 1.0), ("beta", 2.0))]
    text = curves_text(curves, 100, 30, color=False)
    lines = text.splitlines()
    assert len(lines) == 30 and max(map(len, lines)) == 100
    assert "alpha" in text and "beta" in text and "validation bits/char" in text


def test_follow_redraws_until_the_run_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run_dir(tmp_path, "a", 1.0)
    lock = runlock.acquire(run)  # a live training: this process holds the lock
    draws = []

    def fake_draw(curves, *args):
        draws.append(len(curves[0].series["val_bpc"].y))

    def training_ends(seconds: float) -> None:  # the run writes one more evaluation, then ends
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"tokens_seen": 900, "elapsed": 5, "val_bpc": 2.5}) + "\n")
        runlock.release(lock)

    monkeypatch.setattr(plot_cli, "_draw", fake_draw)
    monkeypatch.setattr(plot_cli.time, "sleep", training_ends)
    r = CliRunner().invoke(app, ["plot", str(run), "--follow", "-o", str(tmp_path / "f.png")])
    assert r.exit_code == 0, r.output
    assert draws == [2, 3]


def _plot(*runs: Path, out: Path) -> object:
    return CliRunner().invoke(app, ["plot", *map(str, runs), "-o", str(out)])


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("To be, or not to be,\nthat is the question.\n" * 20, "none of its 40 line(s)"),
        ("", "holds no rows"),
        ("\n \n", "holds no rows"),
        (b"\x00\xff\xfe garbage\n\x89PNG\x00\x00\n", "none of its 2 line(s)"),
        ('{"a": 1}\n[1, 2]\n3\n{"step": "x"}\n', "none of its 4 line(s)"),
    ],
    ids=["text", "empty", "blank", "binary", "other-json"],
)
def test_what_is_not_a_run_is_refused_in_one_line(
    tmp_path: Path, content: str | bytes, phrase: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    metrics = run / "metrics.jsonl"
    if isinstance(content, bytes):
        metrics.write_bytes(content)
    else:
        metrics.write_text(content)
    for given in (run, metrics):
        r = _plot(given, out=tmp_path / "p.png")
        assert r.exit_code == 1, r.output
        assert r.stderr.startswith("charlm: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert phrase in r.stderr and "charlm train" in r.stderr
    assert not (tmp_path / "p.png").exists()


def test_a_text_file_given_as_the_run_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("one\ntwo\nthree\n")
    r = _plot(text, out=tmp_path / "p.png")
    assert r.exit_code == 1 and "notes.txt: none of its 3 line(s) is a metrics row" in r.stderr
    assert "unreadable: lines 1, 2, 3" in r.stderr


def test_unreadable_rows_among_good_ones_are_named(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a", 1.0, tail='{"step": 99, "tokens_se')  # being written
    rows = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    rows[2:2] = ["garbage\n"]
    rows[6:6] = ['{"no": "step"}\n']
    (run / "metrics.jsonl").write_text("".join(rows))
    r = _plot(run, out=tmp_path / "p.png")
    assert r.exit_code == 0, r.output
    assert "skipped 2 unreadable line(s) of" in r.stderr and "lines 3, 7" in r.stderr
    assert read_curves(run).unreadable == [3, 7]  # the row being written is not one of them


def test_a_run_that_has_not_logged_yet_is_waited_for_while_it_trains(tmp_path: Path) -> None:
    run = tmp_path / "new"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    lock = runlock.acquire(run)
    try:
        curves = read_curves(run)  # a live training: nothing yet is no error
        assert not any(s.x for s in curves.series.values())
    finally:
        runlock.release(lock)
    with pytest.raises(MetricsError, match="holds no rows"):
        read_curves(run)
