"""Help that reads right: switches look like switches, values are named.

typer labels every parameter in `--help` with its Python type (`--json <bool>`,
`--capture-dir <str>`), so a switch looks like it takes a value. `TidyGroup`,
the class of agentwrap's root command, tidies each command as it is looked up
(for running or for help): a boolean switch gets no label, an option that
takes a value shows its metavar (`DIR`, `N`; its name in capitals if it has
none), an argument shows only its name. Parsing is untouched.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["TidyGroup", "tidy_command"]


def _no_type(ctx: Any = None) -> None:
    return None


def _tidy_param(param: Any) -> None:
    if getattr(param, "_agentwrap_tidy", False):
        return
    if getattr(param, "param_type_name", None) == "option":
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.display_type_rich = _no_type
        elif param.metavar is None:
            longs = [o for o in param.opts if o.startswith("--")]
            name = (longs[0][2:] if longs else param.name or "value").replace("-", "_")
            param.metavar = name.upper()
    elif getattr(param, "param_type_name", None) == "argument":
        if param.metavar is None:
            param.metavar = (param.name or "arg").upper()
        param.display_type_rich = _no_type
    param._agentwrap_tidy = True


def tidy_command(command: Any, ctx: Any) -> None:
    """Tidy a command's parameters and help option, and those of its subcommands."""
    for param in command.params:
        _tidy_param(param)
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None:
        help_option = get_help_option(ctx)
        if help_option is not None:
            _tidy_param(help_option)
    for sub in getattr(command, "commands", {}).values():
        tidy_command(sub, ctx)


class TidyGroup(TyperGroup):
    """The root group: every command it hands out (and itself) has tidy help."""

    def get_params(self, ctx: Any) -> list:
        params = super().get_params(ctx)
        for param in params:
            _tidy_param(param)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            tidy_command(command, ctx)
        return command
