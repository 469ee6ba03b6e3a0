"""Validation helpers and the user-error types.

Each validator returns the validated value; its errors name the parameter, the value received
and what would be accepted (MNE style). :class:`CSBrainError` is an error the user can fix (a
parameter, a path, the data): the command line prints its message on one line and exits 2,
while any other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["CSBrainError", "CSBrainTypeError", "closest", "more", "check_option", "check_int",
           "check_float", "check_bool"]


class CSBrainError(ValueError):
    """An error the user can fix: a bad parameter, path or data (a ``ValueError``)."""


class CSBrainTypeError(CSBrainError, TypeError):
    """A parameter of the wrong type (both a :class:`CSBrainError` and a ``TypeError``)."""


def closest(value: str, allowed: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` entries of ``allowed`` closest to ``value`` (case-insensitive)."""
    allowed = list(allowed)
    lower = {a.lower(): a for a in allowed}
    hits = difflib.get_close_matches(value.lower(), list(lower), n=n, cutoff=0.5)
    return [lower[h] for h in hits]


def more(items: Iterable[Any], n: int = 10) -> str:
    """``"a, b, c"`` of the first ``n`` items, ending ``"… and N more"`` when there are more.

    Every list in a message goes through this, so a cut list always says that it is cut.
    """
    items = [str(i) for i in items]
    head = ", ".join(items[:n])
    return head + (f" … and {len(items) - n} more" if len(items) > n else "")


def check_option(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise :class:`CSBrainError`."""
    if value in allowed:
        return value
    hint = ""
    if isinstance(value, str):
        near = closest(value, [str(a) for a in allowed], n=3)
        if near:
            hint = f" Did you mean {', '.join(repr(n) for n in near)}?"
    raise CSBrainError(f"{name}={value!r} is not allowed; expected one of {list(allowed)}.{hint}")


def check_int(name: str, value: Any, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer within the bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        import numpy as np

        if isinstance(value, bool) or not isinstance(value, np.integer):
            raise CSBrainTypeError(f"{name} must be an integer, got {value!r} "
                                   f"({type(value).__name__})")
        value = int(value)
    if min_value is not None and value < min_value:
        raise CSBrainError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise CSBrainError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_float(name: str, value: Any, *, min_value: float | None = None,
                max_value: float | None = None, inclusive: bool = True) -> float:
    """Return ``value`` as a float if it is a real number within the bounds."""
    if isinstance(value, bool):
        raise CSBrainTypeError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CSBrainTypeError(f"{name} must be a number, got {value!r} "
                               f"({type(value).__name__})") from None
    if min_value is not None and (out < min_value if inclusive else out <= min_value):
        raise CSBrainError(f"{name} must be {'>=' if inclusive else '>'} {min_value}, got {out}")
    if max_value is not None and (out > max_value if inclusive else out >= max_value):
        raise CSBrainError(f"{name} must be {'<=' if inclusive else '<'} {max_value}, got {out}")
    return out


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool; accepts bools and the strings true/false/yes/no/1/0/on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in {"true", "yes", "1", "on"}:
            return True
        if low in {"false", "no", "0", "off"}:
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise CSBrainError(f"{name}={value!r} is not a boolean; expected true/false (or yes/no, 1/0, "
                       f"on/off)")
