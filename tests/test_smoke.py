from pathlib import Path


def test_trained_run_fixture(trained_run: Path) -> None:
    assert (trained_run / "best.safetensors").is_file()
    assert (trained_run / "latest.safetensors").is_file()
