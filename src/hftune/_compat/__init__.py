"""Every place where hftune relies on a library's internals: one module per library.

hftune uses the public API of its libraries wherever one does the job. What no public API offers
lives here, one hook per function, each with a docstring saying what it relies on, since which
version, and what breaks without it. A hook whose target moved or changed shape raises
:class:`~hftune.errors.LibraryInternalsError` naming the library, its installed version and
the internal; it never silently does nothing. ``tests/unit/test_compat_*.py`` reshape each
internal and expect that error.

Modules: :mod:`hftune._compat.ray`, :mod:`hftune._compat.transformers`,
:mod:`hftune._compat.torch`, :mod:`hftune._compat.wandb`. They import no other hftune module
than :mod:`hftune.errors`, so every layer may use them.
"""

from __future__ import annotations

from importlib import metadata

from hftune.errors import LibraryInternalsError


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution`` (``"unknown"`` when its metadata is gone)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def internal_moved(distribution: str, internal: str, purpose: str) -> LibraryInternalsError:
    """The error a hook raises when ``internal`` of ``distribution`` is missing or changed.

    ``purpose``: what hftune does with it (what breaks without it), in a few words.
    """
    return LibraryInternalsError(
        f"{distribution} {installed_version(distribution)}: hftune needs {internal} to "
        f"{purpose}, and this version does not have it as expected; install a {distribution} "
        f"version within hftune's bounds (pyproject.toml) or update hftune._compat")
