"""Reading anyglm's on/off environment variables, one rule for all of them."""

from __future__ import annotations

import os

__all__ = ["env_flag"]


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
