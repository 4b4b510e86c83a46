"""Up-front checks of the tracking settings, before any study folder exists (one-line errors).

* credentials in an MLflow URI (:func:`uri_credential`): a password, a token as the user name,
  or a credential-looking query parameter; the study folder keeps the config, so all are
  refused;
* the MLflow store (:func:`check_mlflow_store`): a ``file:`` store that the installed MLflow
  refuses (3.x, unless ``MLFLOW_ALLOW_FILE_STORE=true``), a URI scheme MLflow cannot open, a
  server that cannot be reached (one request, no retry, 5 s timeout), an experiment of the
  study's name that was deleted. A SQLite store is read directly (no network, nothing
  written); a database server (``postgresql://``, ``mysql://``, ``mssql://``) is not probed:
  MLflow connects to one with its own long retries, at the study's start;
* the W&B settings (:func:`check_wandb_settings`): project, entity, tags, group and run id as
  ``wandb.Settings`` validates them, without network.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from hftune.config.schema import StudyConfig
from hftune.errors import ConfigError
from hftune.tracking._base import redact_userinfo

# Query parameters whose value is a credential (compared in lower case).
CREDENTIAL_PARAMS = frozenset({
    "token", "access_token", "accesstoken", "auth_token", "id_token", "refresh_token",
    "private_token", "password", "passwd", "pwd", "api_key", "apikey", "api-key", "key",
    "secret", "client_secret", "sig", "signature", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token", "auth"})
# A user name that is a token: a known token prefix, or a long run of token characters with
# letters and digits (user names are short and seldom mix them like that).
_TOKEN_PREFIX = re.compile(r"(?:gh[pousr]_\w{10,}|github_pat_\w{10,}|glpat-[\w-]{10,}|"
                           r"hf_\w{10,}|sk-[\w-]{10,}|dapi[0-9a-f]{16,}|xox[abprs]-[\w-]{10,})")
_TOKEN_LIKE = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{24,}")
_DATABASES = {"postgresql", "postgres", "mysql", "mssql"}


def uri_credential(uri: str) -> str | None:
    """What credential ``uri`` carries (``"a password"``, ``"a token as its user name"``,
    ``"a credential in its query ('token=')"``), or None."""
    try:
        parts = urlsplit(uri)
        if parts.password is not None:
            return "a password"
        user = parts.username
    except ValueError:
        return None
    if user and (_TOKEN_PREFIX.fullmatch(unquote(user)) or _TOKEN_LIKE.fullmatch(unquote(user))):
        return "a token as its user name"
    for key, _value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in CREDENTIAL_PARAMS:
            return f"a credential in its query ('{key}=')"
    return None


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = redact_userinfo(str(exc).splitlines()[0]) if str(exc) else ""
    return f"{type(exc).__name__}: {text[:limit]}"


def file_store_refused() -> bool:
    """Whether the installed MLflow refuses a ``file:`` store (3.x without
    ``MLFLOW_ALLOW_FILE_STORE=true``); MLflow 2 has no such variable and accepts one."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:
        return False
    return not MLFLOW_ALLOW_FILE_STORE.get()


def sqlite_experiment(path: Path, name: str) -> tuple[str, str] | None:
    """``(experiment id, lifecycle stage)`` of experiment ``name`` in the MLflow SQLite
    database at ``path``, read-only; None when there is no such file, table or experiment."""
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{quote(path.resolve().as_posix())}?mode=ro",
                             uri=True) as db:
            row = db.execute("SELECT experiment_id, lifecycle_stage FROM experiments "
                             "WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None  # not an MLflow database (yet): MLflow tells at the study's start
    return (str(row[0]), str(row[1])) if row else None


def _sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///path`` URI (percent escapes decoded as SQLAlchemy does)."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
    return Path(path) if path and path != ":memory:" else None


def check_mlflow_store(cfg: StudyConfig) -> None:
    """Refuse (one-line :class:`ConfigError`) an MLflow store the study cannot log to; see
    the module doc for what is checked and how."""
    from hftune.tracking._mlflow import PROBE_LIMITS, deleted_experiment_message, http_limits

    options = cfg.tracking.mlflow
    if options is None:
        return
    name = options.experiment_name or cfg.name
    uri = options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    where = "tracking.mlflow.tracking_uri" if options.tracking_uri else "$MLFLOW_TRACKING_URI"
    if not uri:  # the study's own store: only a resumed study has one already
        found = sqlite_experiment(Path(cfg.study_dir) / "mlflow.db", name)
        if found is not None and found[1] == "deleted":
            raise ConfigError(deleted_experiment_message(name, found[0], "<study>/mlflow.db"))
        return
    shown = redact_userinfo(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("", "file") or re.fullmatch(r"[a-z]", scheme):  # a path (or C:\...)
        if file_store_refused():
            import mlflow

            raise ConfigError(
                f"{where}: MLflow {mlflow.__version__} no longer opens a file store ({shown}); "
                f"use a database store, e.g. sqlite:///path/to/mlflow.db (or leave it unset "
                f"for <study>/mlflow.db), or set MLFLOW_ALLOW_FILE_STORE=true")
        return
    if scheme == "sqlite":
        path = _sqlite_path(uri)
        found = sqlite_experiment(path, name) if path is not None else None
        if found is not None and found[1] == "deleted":
            raise ConfigError(deleted_experiment_message(name, found[0], shown))
        return
    if scheme.split("+")[0] in _DATABASES:
        return
    from mlflow.tracking import MlflowClient

    with http_limits(PROBE_LIMITS):
        try:
            client = MlflowClient(tracking_uri=uri)
        except Exception as exc:
            raise ConfigError(f"{where}: MLflow cannot open '{shown}' "
                              f"({_first_line(exc)})") from None
        try:
            experiment = client.get_experiment_by_name(name)
        except Exception as exc:
            raise ConfigError(
                f"{where}: cannot reach the MLflow store '{shown}' ({_first_line(exc)}); "
                f"start it or fix the URI, or take mlflow out of tracking") from None
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(deleted_experiment_message(name, experiment.experiment_id, shown))


# wandb.Settings field → the config key a user sets
_WANDB_FIELDS = {"run_tags": "tags", "run_group": "the study name (its group)",
                 "run_id": "the study name (its run ids)"}


def _settings_error(exc: Exception) -> str:
    errors: Any = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError: say which setting
        first = errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        return f"{_WANDB_FIELDS.get(field, field)}: {message}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def check_wandb_settings(cfg: StudyConfig) -> None:
    """Refuse W&B settings that ``wandb.Settings`` rejects (no network, nothing written)."""
    import wandb

    from hftune.tracking._wandb import wandb_run_id

    options = cfg.tracking.wandb
    if options is None:
        return
    try:
        wandb.Settings(project=options.project, entity=options.entity,
                       run_tags=tuple(options.tags), run_group=cfg.name,
                       run_id=wandb_run_id(cfg.name, "00000000_00000", 1))
    except Exception as exc:
        raise ConfigError(f"tracking.wandb: {_settings_error(exc)}") from None
