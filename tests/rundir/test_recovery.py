"""Recovery never crashes on what it was written to repair: logs cut short by a full disk or a
power loss (bytes that are not UTF-8, a character cut in half, a tail of NUL bytes)."""

from __future__ import annotations

import json
from pathlib import Path

from charlm.rundir import recovery


def _rows(*steps: int) -> bytes:
    return "".join(json.dumps({"step": s, "train_loss": 1.5}) + "\n" for s in steps).encode()


def _sample(step: int, text: str = "ab") -> bytes:
    return f"===== step {step}, val bpc 3.100, t=0.8 =====\n{text}\n\n".encode()


def test_metrics_that_are_not_utf8_keep_their_readable_rows(tmp_path: Path) -> None:
    path = tmp_path / recovery.METRICS
    path.write_bytes(_rows(1, 2) + b'{"step": 3, "x": "\xff\xfe"}\n' + _rows(4, 5))
    assert recovery.trim_metrics(path, step=4) == 2  # the undecodable row, and step 5
    assert path.read_bytes() == _rows(1, 2, 4)


def test_a_nul_filled_tail_and_a_cut_row_are_dropped(tmp_path: Path) -> None:
    # What a power loss leaves: the file's length grew, its last blocks never written.
    path = tmp_path / recovery.METRICS
    path.write_bytes(_rows(1, 2) + b'{"step": 3, "train_lo' + b"\x00" * 4096)
    assert recovery.trim_metrics(path, step=10) == 1
    assert path.read_bytes() == _rows(1, 2)
    path.write_bytes(_rows(1) + b"\x00" * 100 + b"\n" + b"\x00" * 50)
    assert recovery.trim_metrics(path, step=10) == 2
    assert path.read_bytes() == _rows(1)


def test_samples_ending_inside_a_character_are_cut_at_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / recovery.SAMPLES
    cut = "café ☃".encode()[:-1]  # the snowman's last byte never reached the disk
    path.write_bytes(_sample(2) + _sample(4, "héllo") + _sample(6)[:-4] + cut)
    assert recovery.trim_samples(path, step=4) == 1
    assert path.read_bytes() == _sample(2) + _sample(4, "héllo")


def test_samples_keep_their_bytes_and_lose_a_nul_tail(tmp_path: Path) -> None:
    path = tmp_path / recovery.SAMPLES
    odd = _sample(2) + b"caf\xe9 \xff\n"  # Latin-1, and a byte no encoding wrote
    path.write_bytes(odd + b"\x00" * 512)
    assert recovery.trim_samples(path, step=4) == 0
    assert recovery.tidy(tmp_path, step=4) == [
        "cut 512 NUL byte(s) from the end of samples.txt (a write the disk never finished)"
    ]
    assert path.read_bytes() == odd  # nothing else was touched, byte for byte
    assert recovery.tidy(tmp_path, step=4) == []


def test_tidy_reports_what_it_did_on_damaged_logs(tmp_path: Path) -> None:
    (tmp_path / recovery.METRICS).write_bytes(_rows(1, 2, 3) + b"\xc3")
    (tmp_path / recovery.SAMPLES).write_bytes(_sample(2) + _sample(3) + "☃".encode()[:2])
    notes = recovery.tidy(tmp_path, step=2)
    assert notes == [
        "the logs went past the checkpoint (step 2): dropped 2 row(s) of metrics.jsonl and 1 of "
        "samples.txt, for steps that are trained again now"
    ]
    assert (tmp_path / recovery.METRICS).read_bytes() == _rows(1, 2)
    assert (tmp_path / recovery.SAMPLES).read_bytes() == _sample(2)
