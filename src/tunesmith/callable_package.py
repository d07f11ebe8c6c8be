"""`tunesmith.train(config)` although `tunesmith.train` is also a subpackage.

Importing a subpackage binds its name on the parent package, over the top-level API function of
the same name (train, evaluate, serve). Making those subpackages callable keeps both meanings:
`tunesmith.train(config)` calls the function, `tunesmith.train.api` is still the module (so
imports and `monkeypatch.setattr("tunesmith.train.api.X", ...)` work as before).
"""

from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    _entry: str

    def __call__(self, *args, **kwargs):
        return getattr(self, self._entry)(*args, **kwargs)


def make_callable(package: str, entry: str) -> None:
    """Calling the package `package` calls its attribute `entry`."""
    module = sys.modules[package]
    module.__class__ = _CallablePackage
    module._entry = entry
