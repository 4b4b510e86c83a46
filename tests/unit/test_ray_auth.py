"""Ray's token authentication: a local Ray is always in token mode with a private token file; a
cluster is joined in token mode whenever a token is at hand, and an open one is warned about."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest

from hftune.errors import HftuneWarning
from hftune.study import ray_auth


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home folder and no token in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_token_is_created_private(home: Path) -> None:
    path = ray_auth.private_token_file()
    assert path == home / ".ray" / "auth_token"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # 256 bits, hex, as Ray makes them
    assert ray_auth.private_token_file() == path and path.read_text() == token  # kept


def test_a_token_others_can_read_is_made_private(home: Path) -> None:
    path = home / ".ray" / "auth_token"
    path.parent.mkdir()
    path.write_text("a" * 64)
    path.chmod(0o644)  # as `ray get-auth-token --generate` leaves it
    assert ray_auth.private_token_file() == path
    assert _mode(path) == 0o600 and path.read_text() == "a" * 64


def test_the_token_path_variable_is_honoured(home: Path, monkeypatch) -> None:
    custom = home / "tokens" / "cluster"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(custom))
    assert ray_auth.private_token_file() == custom and _mode(custom) == 0o600
    assert not (home / ".ray").exists()


def test_a_token_in_the_environment_writes_no_file(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "b" * 64)
    assert ray_auth.private_token_file() is None
    assert list(home.iterdir()) == []
    assert ray_auth.has_token()


def test_a_local_ray_starts_in_token_mode(home: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ray_auth.auth_env_for_local_ray() == {"RAY_AUTH_MODE": "token"}
    assert (home / ".ray" / "auth_token").is_file()


def test_a_users_other_mode_is_honoured_and_warned_about(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "off")
    with pytest.warns(HftuneWarning, match="turns Ray's token authentication off"):
        assert ray_auth.auth_env_for_local_ray() == {}
    assert not (home / ".ray").exists()


def test_a_cluster_is_joined_in_token_mode_when_a_token_is_at_hand(home: Path,
                                                                   monkeypatch) -> None:
    assert ray_auth.auth_env_for_cluster() == {}  # no token: as Ray joins it
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(home / "t"))
    (home / "t").write_text("c" * 64)
    (home / "t").chmod(0o640)
    assert ray_auth.auth_env_for_cluster() == {"RAY_AUTH_MODE": "token"}
    assert _mode(home / "t") == 0o600
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert ray_auth.auth_env_for_cluster() == {}  # the user's own setting stays


def test_an_open_cluster_gets_one_warning(monkeypatch) -> None:
    from hftune._compat import ray as compat

    asked: list[str] = []
    monkeypatch.setattr(compat, "gcs_answers_without_token",
                        lambda address: asked.append(address) or True)
    with pytest.warns(HftuneWarning, match="accepts clients without a token") as caught:
        assert ray_auth.warn_if_unprotected("10.0.0.5:6379")
    assert len(caught) == 1 and asked == ["10.0.0.5:6379"]
    monkeypatch.setattr(compat, "gcs_answers_without_token", lambda address: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ray_auth.warn_if_unprotected("10.0.0.5:6379")


def test_joining_a_cluster_sets_token_mode_for_ray_init_only(home: Path, monkeypatch) -> None:
    import ray

    from hftune._compat import ray as compat
    from hftune.study import ray_session

    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("d" * 64)
    seen: dict[str, object] = {}

    def fake_init(**kwargs: object) -> None:
        seen.update(mode=os.environ.get("RAY_AUTH_MODE"), address=kwargs.get("address"))

    class Context:
        gcs_address = "10.0.0.5:6379"

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: Context())
    monkeypatch.setattr(ray_session, "refresh_auth_mode", lambda: None)
    monkeypatch.setattr(ray_session, "gcs_auth", lambda address: "token")
    monkeypatch.setattr(compat, "gcs_answers_without_token", lambda address: False)
    ray_session.connect_ray("10.0.0.5:6379")
    assert seen == {"mode": "token", "address": "10.0.0.5:6379"}
    assert "RAY_AUTH_MODE" not in os.environ


def _cluster(monkeypatch, auth: str, init) -> None:
    import ray

    from hftune.study import ray_session

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray_session, "refresh_auth_mode", lambda: None)
    monkeypatch.setattr(ray_session, "gcs_auth", lambda address: auth)


def test_a_cluster_that_asks_for_a_token_this_process_lacks_is_refused_at_once(
        home: Path, monkeypatch) -> None:
    from hftune.errors import HftuneInputError
    from hftune.study import ray_session

    joined: list[object] = []
    _cluster(monkeypatch, "token", lambda **kw: joined.append(kw))
    with pytest.raises(HftuneInputError, match="asks for a token and this process has none"):
        ray_session.connect_ray("10.0.0.5:6379")
    assert joined == []  # never waited for ray.init's retries


def test_a_wrong_token_is_named_as_such(home: Path, monkeypatch) -> None:
    from hftune.errors import HftuneInputError
    from hftune.study import ray_session

    monkeypatch.setenv("RAY_AUTH_TOKEN", "e" * 64)

    def refused(**kwargs: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379")

    _cluster(monkeypatch, "token", refused)
    with pytest.raises(HftuneInputError, match="refused this process's; copy the head"):
        ray_session.connect_ray("10.0.0.5:6379")
    _cluster(monkeypatch, "unreachable", refused)
    with pytest.raises(HftuneInputError, match="cannot connect to the Ray cluster"):
        ray_session.connect_ray("10.0.0.5:6379")


def test_the_token_of_hftunes_local_ray_is_private(ray_session) -> None:
    """The test session's Ray was started as hftune starts one."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        pytest.fail("the tests run with Ray's defaults: unset RAY_AUTH_TOKEN")
    assert _mode(ray_auth.token_file()) == 0o600
