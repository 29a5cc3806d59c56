"""docker/compose.yaml and docker/.env.example checked without a Docker engine.

The file is validated against the Compose specification's JSON schema (vendored in
tests/contracts/compose-spec.json), and every ``SUPPORTBOT_*`` variable it or the env example sets
must name a real field of ``core.settings.Settings`` (pydantic-settings ignores unknown ones).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"
SCHEMA = ROOT / "tests" / "contracts" / "compose-spec.json"
SUPPORTBOT_SERVICES = ("migrate", "api", "actions", "worker")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value
    return values


def setting_keys(model: type[BaseModel], prefix: str = "SUPPORTBOT_") -> set[str]:
    """Every env var name a settings model reads, nested models included (``A__B``)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name.upper()}"
        keys.add(key)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= setting_keys(annotation, key + "__")
    return keys


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} interpolation, enough for this file."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"{name} is required: {arg}")
        return arg if op == ":-" else ""
    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value).replace("$$", "$")


def service_env(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    values = dict(env)
    environment = service.get("environment", {})
    assert isinstance(environment, dict)
    values.update({key: substitute(str(value), env) for key, value in environment.items()})
    return {key: value for key, value in values.items() if key.startswith("SUPPORTBOT_")}


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(load_compose(), schema)


def test_schema_check_catches_a_misspelled_key() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = load_compose()
    broken["services"]["api"]["depends_onn"] = broken["services"]["api"].pop("depends_on")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_supportbot_variable_is_a_real_setting() -> None:
    known = setting_keys(Settings)
    env = read_env_file(ENV_EXAMPLE)
    services = load_compose()["services"]
    for name in SUPPORTBOT_SERVICES:
        unknown = sorted(set(service_env(services[name], env)) - known)
        assert not unknown, f"{name}: not settings in core/settings.py: {unknown}"


def test_the_known_setting_names_are_exact() -> None:
    known = setting_keys(Settings)
    assert "SUPPORTBOT_GENERATOR__REMOTE__URL" in known
    assert "SUPPORTBOT_GENERATOR__REMOTE_URL" not in known


@pytest.mark.parametrize("name", SUPPORTBOT_SERVICES)
def test_service_settings_parse(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SUPPORTBOT_"):
            monkeypatch.delenv(key)
    values = service_env(load_compose()["services"][name], read_env_file(ENV_EXAMPLE))
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.store.backend == "elasticsearch"
    assert settings.store.elasticsearch_url == "http://elasticsearch:9200"
    assert settings.generator.backend == "remote"
    assert settings.generator.remote.url == "http://tgi:80"
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value().startswith("postgresql://supportbot:")
    assert str(settings.data_dir) == "/app/data"
    assert settings.rasa.api_url == "http://api:8000"


def test_compose_variables_are_documented_in_the_env_example() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(read_env_file(ENV_EXAMPLE))
    assert used - documented == set()


def test_depends_on_targets_exist_and_can_be_waited_for() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}: {condition}"
                assert services[target].get("restart") == "no", f"{target} is one-shot: restart must be 'no'"


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, name


def test_tgi_reserves_a_gpu_and_reads_the_adapter_env_file() -> None:
    tgi = load_compose()["services"]["tgi"]
    devices = tgi["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert any(entry["path"] == "tgi.env" for entry in tgi["env_file"])
    # the adapter paths printed by `supportbot train tgi-env` are under SUPPORTBOT_DATA_DIR
    assert "supportbot-data:/app/data:ro" in tgi["volumes"]
    assert "/health" in " ".join(tgi["healthcheck"]["test"])


def test_postgres_and_elasticsearch_healthchecks() -> None:
    services = load_compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "_cluster/health" in " ".join(services["elasticsearch"]["healthcheck"]["test"])
    assert services["elasticsearch"]["environment"]["discovery.type"] == "single-node"
    assert services["migrate"]["command"] == ["supportbot", "db", "upgrade"]
