"""Reading anyglm's environment variables (on/off flags, counts), one rule for each kind."""

from __future__ import annotations

import os

__all__ = ["env_count", "env_flag"]


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to something other than off.

    Unset, empty, ``0``, ``false`` and ``no`` (any case, surrounding spaces
    ignored) mean off; any other value means on.

    Examples
    --------
    >>> import os
    >>> from anyglm._env import env_flag
    >>> os.environ["ANYGLM_EXAMPLE_FLAG"] = " No "
    >>> env_flag("ANYGLM_EXAMPLE_FLAG")
    False
    >>> os.environ["ANYGLM_EXAMPLE_FLAG"] = "1"
    >>> env_flag("ANYGLM_EXAMPLE_FLAG")
    True
    >>> del os.environ["ANYGLM_EXAMPLE_FLAG"]
    """
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def env_count(name: str, default: int) -> int:
    """The whole number of 0 or more in the environment variable ``name``; ``default`` if unset.

    Raises
    ------
    ValueError
        When the variable is set to something other than a whole number of 0 or more.

    Examples
    --------
    >>> import os
    >>> from anyglm._env import env_count
    >>> os.environ["ANYGLM_EXAMPLE_COUNT"] = " 12 "
    >>> env_count("ANYGLM_EXAMPLE_COUNT", 5)
    12
    >>> del os.environ["ANYGLM_EXAMPLE_COUNT"]
    >>> env_count("ANYGLM_EXAMPLE_COUNT", 5)
    5
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{name} must be a whole number of values, got {raw!r}; "
            f"unset it for the default {default}"
        ) from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value}")
    return value
