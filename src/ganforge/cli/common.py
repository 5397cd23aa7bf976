"""What every verb module shares: its sub-parser with examples, and the families' own options."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, Callable, Iterable

from ganforge.registry import FamilySpec, families

Handler = Callable[[argparse.Namespace], int]
OWNERS = "_family_options"  # parser default: option dest -> (the families that declared it, its default)


def add_verb(sub: Any, name: str, help_text: str, examples: str, handler: Handler) -> argparse.ArgumentParser:
    """A verb's sub-parser: its description, its examples (generic ones, then each family's) and handler."""
    lines = textwrap.dedent(examples).strip("\n").splitlines()
    for spec in families():
        lines += textwrap.dedent(spec.examples.get(name, "")).strip("\n").splitlines()
    epilog = "examples:\n" + "\n".join(f"  {line.strip()}" for line in lines if line.strip()) if lines else None
    parser = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


class _OwnedGroup:
    """An argument group that records which family declared each option, and lets two families
    share one option (the second declaration of a flag is skipped)."""

    def __init__(self, parser: argparse.ArgumentParser, group: Any, family: str, owners: dict[str, tuple[set[str], Any]]):
        self._parser, self._group, self._family, self._owners = parser, group, family, owners

    def add_argument(self, *flags: str, **kwargs: Any) -> None:
        taken = set(self._parser._option_string_actions)  # noqa: SLF001 (argparse has no public lookup)
        if taken & set(flags):
            action = self._parser._option_string_actions[next(f for f in flags if f in taken)]  # noqa: SLF001
        else:
            action = self._group.add_argument(*flags, **kwargs)
        self._owners.setdefault(action.dest, (set(), action.default))[0].add(self._family)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> "_OwnedGroup":
        return _OwnedGroup(self._parser, self._group.add_mutually_exclusive_group(**kwargs), self._family,
                           self._owners)


def add_family_options(parser: argparse.ArgumentParser, specs: Iterable[FamilySpec],
                       declare: Callable[[FamilySpec], Callable[[Any], None] | None]) -> None:
    """One argument group per family whose ``declare(spec)`` returns an ``add_arguments`` function."""
    owners: dict[str, tuple[set[str], Any]] = {}
    for spec in specs:
        add = declare(spec)
        if add is not None:
            group = parser.add_argument_group(f"{spec.name} models")
            add(_OwnedGroup(parser, group, spec.name, owners))
    parser.set_defaults(**{OWNERS: owners})


def refuse_other_families_options(args: argparse.Namespace, family: str, source: str) -> None:
    """A family option given for a model of another family is an error naming both."""
    for dest, (owners, default) in getattr(args, OWNERS, {}).items():
        if family not in owners and getattr(args, dest, None) != default:
            flag = "--" + dest.replace("_", "-")
            raise ValueError(f"{flag} is an option of {', '.join(sorted(owners))} models; '{source}' is a "
                             f"{family} model")
