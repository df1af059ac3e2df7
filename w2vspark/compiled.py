"""The optional compiled helpers of ``native/w2vspark_native.c``, loaded once for every caller.

``pip install`` builds them when a C compiler exists. Each helper has a numpy or Python twin in the module that
uses it, giving the same results (the tests compare the two), so a build without them trains the same models,
only slower. A module built by an older version may lack the newer helpers: each is looked up by name.
"""
from __future__ import annotations

try:
    import w2vspark_native as _module
except (ImportError, OSError):  # pragma: no cover - not built, or built for another platform
    _module = None


def helper(name: str, use: bool | None = None):
    """The compiled function ``name``, or None when it is not to be used.

    ``use`` None: the function when this build has it; False: None (the caller's numpy path); True: the
    function, and a clear error when this build lacks it."""
    if use is False:
        return None
    fn = getattr(_module, name, None)
    if fn is None and use:
        raise RuntimeError(f"the compiled helper {name} is not in this build of w2vspark_native "
                           f"(reinstall w2vspark with a C compiler present)")
    return fn


def available(name: str) -> bool:
    """True when this build has the compiled function ``name``."""
    return helper(name) is not None
