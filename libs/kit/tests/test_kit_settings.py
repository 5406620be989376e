"""The kit's secret settings: a secret comes from its variable or the file ``<VAR>_FILE`` names,
never both, never from the config file, and a refusal names the variables, never a value."""

import re
from pathlib import Path
from typing import ClassVar, Self

import pytest
from pydantic import SecretStr, ValidationError, model_validator

from ordo.kit.settings import ServiceSettings, resolve_secret

SECRET = "s3cret-value-0123"


class VaultSettings(ServiceSettings):
    """A service with one required secret and one optional one."""

    service_name: ClassVar[str] = "vault"

    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        resolve_secret(self, "vault_token", required=True, required_by="the vault")
        resolve_secret(self, "signing_key", required=False)
        return self


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VAULT_TOKEN", "SIGNING_KEY"):
        monkeypatch.delenv(f"ORDO_{name}", raising=False)
        monkeypatch.delenv(f"ORDO_{name}_FILE", raising=False)


def test_a_secret_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_VAULT_TOKEN", SECRET)

    settings = VaultSettings()

    assert settings.vault_token is not None
    assert settings.vault_token.get_secret_value() == SECRET
    assert settings.signing_key is None
    assert SECRET not in repr(settings)


def test_a_secret_comes_from_the_file_its_file_variable_names_stripped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "vault-token"
    token_file.write_text(f"  {SECRET}\n")
    monkeypatch.setenv("ORDO_VAULT_TOKEN_FILE", str(token_file))

    settings = VaultSettings()

    assert settings.vault_token is not None
    assert settings.vault_token.get_secret_value() == SECRET


def test_an_empty_optional_secret_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_VAULT_TOKEN", SECRET)
    monkeypatch.setenv("ORDO_SIGNING_KEY", "")

    assert VaultSettings().signing_key is None


def test_a_missing_required_secret_names_its_variables_and_what_needs_it() -> None:
    with pytest.raises(
        ValidationError,
        match="vault_token is required by the vault: set ORDO_VAULT_TOKEN or ORDO_VAULT_TOKEN_FILE",
    ):
        VaultSettings()


def test_a_secret_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "vault-token"
    token_file.write_text(SECRET)
    monkeypatch.setenv("ORDO_VAULT_TOKEN", SECRET)
    monkeypatch.setenv("ORDO_VAULT_TOKEN_FILE", str(token_file))

    with pytest.raises(ValidationError, match="set ORDO_VAULT_TOKEN or ORDO_VAULT_TOKEN_FILE, not"):
        VaultSettings()


def test_an_unreadable_secret_file_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("ORDO_VAULT_TOKEN_FILE", str(missing))

    message = f"ORDO_VAULT_TOKEN_FILE: cannot read {missing}: No such file or directory"
    with pytest.raises(ValidationError, match=re.escape(message)):
        VaultSettings()


def test_an_empty_secret_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "vault-token"
    empty.write_text(" \n")
    monkeypatch.setenv("ORDO_VAULT_TOKEN_FILE", str(empty))

    with pytest.raises(
        ValidationError, match=re.escape(f"ORDO_VAULT_TOKEN_FILE: {empty} is empty")
    ):
        VaultSettings()


def test_a_secret_in_the_config_file_is_refused_even_when_its_variable_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "ordo.yaml"
    config.write_text(f"vault:\n  vault_token: {SECRET}\n")
    monkeypatch.setenv("ORDO_CONFIG", str(config))
    monkeypatch.setenv("ORDO_VAULT_TOKEN", "from-the-environment")

    with pytest.raises(ValidationError) as refused:
        VaultSettings()

    message = f"vault_token is in the config file {config}: remove it, and set ORDO_VAULT_TOKEN"
    assert message in str(refused.value)


def test_the_config_file_may_name_a_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "vault-token"
    token_file.write_text(SECRET)
    config = tmp_path / "ordo.yaml"
    config.write_text(f"vault:\n  vault_token_file: {token_file}\n")
    monkeypatch.setenv("ORDO_CONFIG", str(config))

    settings = VaultSettings()

    assert settings.vault_token is not None
    assert settings.vault_token.get_secret_value() == SECRET


def test_every_service_s_refusal_hides_the_values_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The database URL and NATS password every service has: a mistake next to them must not
    # print them (pydantic shows a refused input's value unless told not to).
    monkeypatch.setenv("ORDO_VAULT_TOKEN", SECRET)
    monkeypatch.setenv("ORDO_DATABASE_URL", f"postgresql://ordo:{SECRET}@db/ordo")
    monkeypatch.setenv("ORDO_NATS__PASSWORD", SECRET)
    monkeypatch.setenv("ORDO_NATS__MAX_DELIVER", "not-a-number")

    with pytest.raises(ValidationError) as refused:
        VaultSettings()

    assert "max_deliver" in str(refused.value)
    assert SECRET not in str(refused.value)
    assert "not-a-number" not in str(refused.value)
