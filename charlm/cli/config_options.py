"""`charlm train`'s model, data and training options, derived from the config fields.

Each option is declared once, on its dataclass field (``config.schema.option``: flag,
metavar, help); ``config.options.OPTIONS`` reads them off, and this module turns them into
Typer parameters added to a command's signature. A field cannot be forgotten here and dropped
later: the command receives exactly the options ``OPTIONS`` names, as keyword arguments.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Annotated, Any

import typer

from charlm.config.options import OPTIONS, Option
from charlm.config.schema import DataConfig, ModelConfig, TrainConfig

_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _cli_type(option: Option) -> type:
    """The type the command line reads: the field's, without its ``| None``."""
    if option.typed is not None:
        return option.typed
    hint = typing.get_type_hints(_SECTIONS[option.section])[option.field]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _help(option: Option, help_text: str) -> str:
    """An option no preset sets (where it runs, how data is read) shows its default; the
    others default to the preset's value, which the command's epilog lists."""
    if option.facts.get("in_preset_help", True) or "[default:" in help_text:
        return help_text
    default = next(f.default for f in fields(_SECTIONS[option.section]) if f.name == option.field)
    return f"{help_text} [default: {default}]"


def _parameter(option: Option, help_text: str) -> inspect.Parameter:
    kind = _cli_type(option)
    help_text = _help(option, help_text)
    if kind is bool:
        info = typer.Option(f"{option.flag}/--no-{option.flag[2:]}", help=help_text)
    else:
        info = typer.Option(option.flag, metavar=option.metavar, help=help_text)
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, info],  # None: not given, the preset's value
    )


def with_config_options(
    *, after: str, declared: tuple[str, ...] = (), helps: Mapping[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command taking ``**options`` one parameter per config option, after ``after``.

    ``declared``: options the command declares itself (shared with other commands, as
    --threads); ``helps``: help texts that depend on more than the field (e.g. the cells an
    option applies to).
    """
    helps = helps or {}

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())
        own = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
        derived = [
            _parameter(o, helps.get(o.name, o.help))
            for o in OPTIONS.values()
            if o.name not in declared
        ]
        at = next(i for i, p in enumerate(own) if p.name == after) + 1
        params = [*own[:at], *derived, *own[at:]]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return wrap


def given_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The config options the user gave: every one ``OPTIONS`` names that is not None."""
    return {k: v for k, v in values.items() if k in OPTIONS and v is not None}
