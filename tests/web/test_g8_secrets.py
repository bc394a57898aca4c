"""G8: secrets come from the environment in production, and the session key can be rotated without logging
everyone out."""

from __future__ import annotations

import pytest

from kassa.config import build_config
from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in

FERNET_KEY = "n0HqeGG7C8yKGS-wZuPMM6yKKgW3Rt7y6L1v8Y1nQ0M="


def _production_app(database_url, tmp_path, monkeypatch, **env):
    from kassa import create_app

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("KASSA_BASE_URL", "https://pay.example.com")
    for name in ("KASSA_SECRET_KEY", "KASSA_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url})


@pytest.mark.parametrize(("given", "named"), [
    ({}, "KASSA_SECRET_KEY and KASSA_ENCRYPTION_KEYS are not set"),
    ({"KASSA_SECRET_KEY": "s" * 64}, "KASSA_ENCRYPTION_KEYS is not set"),
    ({"KASSA_ENCRYPTION_KEYS": FERNET_KEY}, "KASSA_SECRET_KEY is not set"),
])
def test_g8_a_production_instance_refuses_to_start_without_its_secrets(database_url, tmp_path, monkeypatch, given,
                                                                       named):
    with pytest.raises(RuntimeError, match=named):
        _production_app(database_url, tmp_path, monkeypatch, **given)


def test_g8_with_both_secrets_in_the_environment_it_starts_on_them(database_url, tmp_path, monkeypatch):
    app = _production_app(database_url, tmp_path, monkeypatch, KASSA_SECRET_KEY="s" * 64,
                          KASSA_ENCRYPTION_KEYS=FERNET_KEY)
    assert app.config["SECRET_KEY"] == "s" * 64 and app.config["KASSA_ENCRYPTION_KEYS"] == [FERNET_KEY]
    with app.app_context():
        db.engine.dispose()


def test_g8_previous_secret_keys_are_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KASSA_SECRET_KEY_FALLBACKS", " old-2 ,old-1,, ")
    assert build_config(tmp_path)["SECRET_KEY_FALLBACKS"] == ["old-2", "old-1"]
    monkeypatch.delenv("KASSA_SECRET_KEY_FALLBACKS")
    assert build_config(tmp_path)["SECRET_KEY_FALLBACKS"] == []


def test_g8_rotating_the_session_key_keeps_people_signed_in_while_the_old_key_is_a_fallback(app, client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    assert client.get("/settings/account").status_code == 200
    old_key = app.config["SECRET_KEY"]

    app.config.update(SECRET_KEY="the new key " * 4, SECRET_KEY_FALLBACKS=[old_key])
    assert client.get("/settings/account").status_code == 200  # the cookie signed with the old key still reads
    newcomer = app.test_client()
    log_in(newcomer, owner.email, PASSWORD)  # new sessions are signed with the new key...
    # ... so once the fallback is dropped (after KASSA_SESSION_MAX_DAYS), they stay; the old cookie is refused.
    app.config.update(SECRET_KEY_FALLBACKS=[])
    assert newcomer.get("/settings/account").status_code == 200
    assert client.get("/settings/account").status_code in (302, 303)


def test_g8_without_the_fallback_a_rotated_key_signs_everyone_out(app, client):
    """The control: what the fallback prevents."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    app.config.update(SECRET_KEY="the new key " * 4, SECRET_KEY_FALLBACKS=[])
    response = client.get("/settings/account")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_g8_secrets_can_come_from_files_named_by_name_file(database_url, tmp_path, monkeypatch):
    """Docker and systemd credentials: KASSA_SECRET_KEY_FILE=/run/secrets/… instead of the value itself."""
    (tmp_path / "secret_key").write_text("from a file " * 6 + "\n")
    (tmp_path / "fernet").write_text(FERNET_KEY + "\n")
    app = _production_app(database_url, tmp_path / "instance", monkeypatch,
                          KASSA_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
                          KASSA_ENCRYPTION_KEYS_FILE=str(tmp_path / "fernet"))
    assert app.config["SECRET_KEY"] == ("from a file " * 6).strip()
    assert app.config["KASSA_ENCRYPTION_KEYS"] == [FERNET_KEY]
    with app.app_context():
        db.engine.dispose()


def test_g8_a_secret_file_that_cannot_be_read_stops_the_start_saying_which(database_url, tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match=r"KASSA_SECRET_KEY_FILE names .*missing, which can't be read"):
        _production_app(database_url, tmp_path, monkeypatch, KASSA_SECRET_KEY_FILE=str(tmp_path / "missing"),
                        KASSA_ENCRYPTION_KEYS=FERNET_KEY)
