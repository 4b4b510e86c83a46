"""What ``hftune run`` checks of tracking before any study folder exists: the MLflow store
(reachable, a scheme and a store MLflow opens, no deleted experiment), the W&B settings, and
credentials in a tracking URI (refused, and masked in every message). No network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hftune.tracking as tracking_mod
from hftune.errors import ConfigError
from hftune.testing.tracking import (
    tracked_study,
)
from hftune.tracking import check_tracking_available, has_password
from hftune.tracking._base import redact_userinfo
from hftune.tracking._mlflow import default_tracking_uri

pytestmark = pytest.mark.usefixtures("offline_tracking")

DOWN = "http://127.0.0.1:1"  # nothing listens there: connection refused at once


def test_unreachable_mlflow_server_is_refused_at_once(tmp_path, monkeypatch) -> None:
    """One connection attempt (no retry) with a 5 s timeout, whatever the user's MLflow
    variables say; they are put back afterwards. Seen where urllib3 opens the connection."""
    import urllib3

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    attempts: list[tuple[str, int, float | None]] = []
    real_connect = urllib3.connection.HTTPConnection.connect

    def connect(self) -> None:
        attempts.append((self.host, self.port, self.timeout))
        real_connect(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", connect)
    out = tmp_path / "s"
    for cfg, where in ((tracked_study({"mlflow": {"tracking_uri": DOWN}}, output_dir=str(out)),
                        "tracking.mlflow.tracking_uri"),
                       (tracked_study(["mlflow"], output_dir=str(out)), "$MLFLOW_TRACKING_URI")):
        if where.startswith("$"):
            monkeypatch.setenv("MLFLOW_TRACKING_URI", DOWN)
        attempts.clear()
        with pytest.raises(ConfigError) as info:
            check_tracking_available(cfg)
        assert attempts == [("127.0.0.1", 1, 5)], attempts
        text = str(info.value)
        assert text.startswith(f"{where}: cannot reach the MLflow store '{DOWN}'")
        assert "\n" not in text
    assert not out.exists()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


@pytest.mark.parametrize("uri, message", [
    ("htp://x:5000", "tracking.mlflow.tracking_uri: MLflow cannot open 'htp://x:5000'"),
    ("file:///nowhere/mlruns", "no longer opens a file store (file:///nowhere/mlruns); use a "
                               "database store, e.g. sqlite:///"),
    ("./mlruns", "or set MLFLOW_ALLOW_FILE_STORE=true"),
])
def test_mlflow_store_the_client_refuses_is_a_config_error(uri, message, monkeypatch) -> None:
    """A bad scheme, and a file store where MLflow (3.x) refuses one; where the user allows
    file stores (MLFLOW_ALLOW_FILE_STORE=true) one passes, and nothing is created."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as info:
        check_tracking_available(tracked_study({"mlflow": {"tracking_uri": uri}}))
    assert message in str(info.value) and "\n" not in str(info.value)
    if uri != "htp://x:5000":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        check_tracking_available(tracked_study({"mlflow": {"tracking_uri": uri}}))
        assert not Path("/nowhere").exists() and not Path("mlruns").exists()


def test_deleted_experiment_is_refused(tmp_path) -> None:
    """In a SQLite store named by the config, and in a resumed study's own store."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/team.db"
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("t"))
    with pytest.raises(ConfigError, match=r"^tracking.mlflow: the experiment 't' in sqlite:///"
                                          r".*team.db is deleted; restore it \(mlflow "
                                          r"experiments restore --experiment-id 1\) or set "
                                          r"tracking.mlflow.experiment_name"):
        check_tracking_available(tracked_study({"mlflow": {"tracking_uri": uri}}))
    check_tracking_available(tracked_study({"mlflow": {"tracking_uri": uri,
                                                       "experiment_name": "u"}}))

    own = tmp_path / "study"
    own_client = MlflowClient(tracking_uri=default_tracking_uri(own))
    own_client.delete_experiment(own_client.create_experiment("t"))
    with pytest.raises(ConfigError, match=r"'t' in <study>/mlflow.db is deleted"):
        check_tracking_available(tracked_study(["mlflow"], output_dir=str(own)))


@pytest.mark.parametrize("options, message", [
    ({"project": "my/proj"}, "tracking.wandb: Invalid project name 'my/proj': cannot contain"),
    ({"tags": ["lr-sweep-" + "x" * 60]}, "tracking.wandb: tags: Tag 'lr-sweep-"),
])
def test_wandb_settings_are_validated_up_front(options, message) -> None:
    with pytest.raises(ConfigError) as info:
        check_tracking_available(tracked_study({"wandb": {"mode": "offline", **options}}))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, shown", [
    ("failed: https://alice:p@ss@host/api", "failed: https://***@host/api"),
    ("url=https://host/?token=abc&x=1", "url=https://host/?token=***&x=1"),
    ("https://h/?access_token=S3CRET", "https://h/?access_token=***"),
])
def test_messages_mask_every_credential(text, shown) -> None:
    assert redact_userinfo(text) == shown


CREDENTIAL_URIS = [
    ("https://host/api?access_token=SECRET", "a credential in its query ('access_token=')"),
    ("https://host/?api_key=1", "a credential in its query ('api_key=')"),
    ("https://ghp_SECRETTOKEN1234@host", "a token as its user name"),
    ("https://a1B2c3D4e5F6g7H8i9J0k1L2@host", "a token as its user name"),
    ("https://alice:S3cret@host", "a password"),
    ("https://alice@mlflow.example.com", None),  # a user name alone is no secret
    ("https://host/api?experiment=1", None),
]


def test_credentials_in_the_uri_are_refused(monkeypatch) -> None:
    """A token as the user name and credential-looking query parameters are refused like a
    password (the study folder keeps the config); a plain user name is not."""
    monkeypatch.setattr(tracking_mod, "check_mlflow_store", lambda cfg: None)  # no server here
    for uri, held in CREDENTIAL_URIS:
        assert has_password(uri) is (held is not None), uri
        cfg = tracked_study({"mlflow": {"tracking_uri": uri}})
        if held is None:
            check_tracking_available(cfg)
            continue
        with pytest.raises(ConfigError) as info:
            check_tracking_available(cfg)
        assert str(info.value).startswith(
            f"tracking.mlflow.tracking_uri holds {held}, and the study folder keeps its "
            f"config; give credentials in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
