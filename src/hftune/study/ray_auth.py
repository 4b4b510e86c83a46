"""Ray's token authentication, on by default and never turned off by hftune.

Ray's servers (GCS, raylet, workers) listen on all interfaces; the token is what keeps others
out. What hftune does:

* **A local Ray** (``hftune run`` without ``--address``) always starts in token mode: the token
  is the one Ray's own clients find (``$RAY_AUTH_TOKEN``, else the file
  ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``); a missing file is created private
  (mode 0600, in a folder of mode 0700) and one readable by others is made private
  (:func:`private_token_file`). ``RAY_AUTH_MODE`` is set to ``token`` for ``ray.init`` only,
  so Ray neither warns nor invites its users to opt out.
* **A cluster** (``--address``): Ray itself turns token mode on for an explicit address only
  when ``RAY_AUTH_MODE=token`` is set. hftune connects in token mode whenever a token is at
  hand, and says in one ``warning:`` line when the cluster answers a client that has no token
  (:func:`warn_if_unprotected`).
* A ``RAY_AUTH_MODE`` other than ``token`` in the environment is the user's choice: hftune
  honours it and prints one ``warning:`` line that the cluster is open.

The token never enters the study folder, a tracker or a model card: hftune reads no token
itself, Ray's clients do.
"""

from __future__ import annotations

import os
import secrets
import stat
import warnings
from pathlib import Path

from hftune.errors import HftuneWarning

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
TOKEN_MODE = "token"
# How a driver gets a cluster's token (README: Joining a Ray cluster).
TOKEN_HINT = (f"copy the head node's ~/.ray/auth_token here (mode 600) and set "
              f"{TOKEN_PATH_ENV} to it, or {TOKEN_ENV} to the token (README: Joining a Ray "
              f"cluster)")


def token_file() -> Path:
    """Where Ray's clients read the token from when ``$RAY_AUTH_TOKEN`` is not set:
    ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    custom = os.environ.get(TOKEN_PATH_ENV)
    return Path(custom).expanduser() if custom else Path.home() / ".ray" / "auth_token"


def has_token() -> bool:
    """Whether Ray's clients in this process would find a token."""
    return bool(os.environ.get(TOKEN_ENV)) or token_file().is_file()


def private_token_file(create: bool = True) -> Path | None:
    """The token file, private to its owner: created with a new random token (256 bits, as
    Ray generates them) when ``create`` and it is missing, its mode narrowed to 0600 when
    others may read it. ``None`` when the token comes from ``$RAY_AUTH_TOKEN`` (no file), or
    when there is no file and ``create`` is false."""
    if os.environ.get(TOKEN_ENV):
        return None
    path = token_file()
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(mode & 0o700)
        except OSError:
            warnings.warn(f"the Ray token file {path} can be read by other users and cannot be "
                          f"made private here (chmod 600 {path})", HftuneWarning, stacklevel=2)
    return path


def auth_env_for_local_ray() -> dict[str, str]:
    """The environment ``ray.init`` of a new local Ray gets: ``RAY_AUTH_MODE=token`` with a
    private token (:func:`private_token_file`), or nothing when the user set another mode
    (then one warning says so)."""
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != TOKEN_MODE:
        warnings.warn(f"{AUTH_MODE}={mode} in the environment turns Ray's token "
                      f"authentication off: anyone who reaches this machine's Ray ports can run "
                      f"code as you; unset it", HftuneWarning, stacklevel=2)
        return {}
    private_token_file()
    return {AUTH_MODE: TOKEN_MODE}


def auth_env_for_cluster() -> dict[str, str]:
    """The environment ``ray.init(address=...)`` gets: ``RAY_AUTH_MODE=token`` when a token is
    at hand and the user set no mode (Ray alone connects an explicit address without one)."""
    if os.environ.get(AUTH_MODE) is not None or not has_token():
        return {}
    private_token_file(create=False)
    return {AUTH_MODE: TOKEN_MODE}


def warn_if_unprotected(gcs_address: str) -> bool:
    """One ``warning:`` line when the Ray GCS at ``gcs_address`` answers a client without a
    token (:func:`hftune._compat.ray.gcs_answers_without_token`); returns whether it did."""
    from hftune._compat.ray import gcs_answers_without_token

    if not gcs_answers_without_token(gcs_address):
        return False
    warnings.warn(f"the Ray cluster at {gcs_address} accepts clients without a token: anyone "
                  f"who reaches it can run code on it; start its nodes with "
                  f"{AUTH_MODE}={TOKEN_MODE} (README: Joining a Ray cluster)", HftuneWarning,
                  stacklevel=2)
    return True
