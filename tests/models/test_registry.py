"""The cell registry: names, lookups, the rules it applies to every cell's options."""

from __future__ import annotations

import pytest

from charlm.config.schema import ModelConfig, RunConfig
from charlm.errors import ConfigError
from charlm.models import registry
from tests import toy_cell


def test_an_unknown_cell_names_the_choices() -> None:
    with pytest.raises(ConfigError) as e:
        registry.get("transformer")
    assert (
        str(e.value)
        == f"unknown --model 'transformer': choose one of {', '.join(registry.names())}"
    )


def test_a_registered_cell_comes_after_the_built_in_ones_and_goes_again() -> None:
    built_in = registry.names()
    registry.register(toy_cell.SPEC)
    try:
        assert registry.names() == (*built_in, toy_cell.NAME)
        with pytest.raises(ValueError, match="registered already"):
            registry.register(toy_cell.SPEC)
    finally:
        registry.unregister(toy_cell.NAME)
    assert registry.names() == built_in
    with pytest.raises(ConfigError):
        registry.get(toy_cell.NAME)


def _other(option: str) -> float:
    """A value of ``option`` other than its default."""
    default = registry._default(option)
    return default + 0.5 if default < 0.5 else default - 0.5


@pytest.mark.parametrize("option", list(registry.cell_options()))
def test_a_cell_option_is_refused_by_every_cell_that_does_not_take_it(option: str) -> None:
    takers = registry.takers(option)
    assert takers  # an option in the table is some cell's
    for name in registry.names():
        registry.check(ModelConfig(model=name))  # the defaults are no choice
        cfg = ModelConfig(model=name, **{option: _other(option)})
        if name in takers:
            registry.check(cfg)
            continue
        with pytest.raises(ConfigError) as e:
            registry.check(cfg)
        message = str(e.value)
        flag = "--" + option.replace("_", "-")
        assert message.startswith(flag) and "\n" not in message
        assert all(t in message for t in takers)


def test_a_preset_s_tie_is_undone_for_a_cell_that_cannot_tie() -> None:
    for name in registry.names():
        spec = registry.get(name)
        tied = ModelConfig(model=name, embed_size=8, hidden_size=8, tie_weights=True)
        config, notes = registry.fit(RunConfig(model=tied))
        assert config.model.tie_weights == (not spec.untie)
        assert len(notes) == (1 if spec.untie else 0)
        if spec.untie:
            assert notes[0].startswith(f"--model {name} {spec.untie}")
            with pytest.raises(ConfigError, match="--tie-weights"):  # asked for: refused
                registry.fit(RunConfig(model=tied), {"tie_weights": True})


def test_a_config_for_another_cell_drops_the_options_that_cell_refuses() -> None:
    base = ModelConfig(
        embed_size=8,
        hidden_size=8,
        tie_weights=True,
        **{o: _other(o) for o in registry.cell_options()},
    )
    for name in registry.names():
        cfg = registry.for_cell(base, name)
        registry.check(cfg)  # it suits the cell
        spec = registry.get(name)
        for option in registry.cell_options():
            kept = option in spec.options
            assert (getattr(cfg, option) == getattr(base, option)) == kept, (name, option)
        assert cfg.tie_weights == (not spec.untie) and cfg.hidden_size == base.hidden_size


def test_help_and_docs_name_every_cell_once() -> None:
    help_text, page = registry.model_help(), registry.equations_page()
    for name in registry.names():
        assert help_text.count(f"{name} (") == 1
        assert page.count(f"(`--model {name}`)") == 1
