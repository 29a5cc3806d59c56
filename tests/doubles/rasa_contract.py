"""Rasa's action-server spec (``rasa-action-server.yml``, which ``$ref``s ``rasa.yml``) as JSON Schema
validators for the webhook's request body and its 200/400/500 response bodies.

The published spec contradicts rasa_sdk (the reference action server, same repository) in two places.
:data:`ERRATA` corrects exactly those, and ``tests/bot/test_rasa_contract.py`` proves that each is
needed (the published schema rejects what rasa_sdk itself emits) and that each still rejects wrong types:

- ``Event.timestamp`` is ``integer``; rasa_sdk's event helpers send ``"timestamp": null`` and Rasa
  records float epoch seconds. Corrected to number or null.
- ``Response`` is an ``allOf`` of eight alternatives: ``TextResponse`` requires ``text``,
  ``ResponseResponse`` requires ``response`` and both it and ``TemplateResponse`` demand string
  ``additionalProperties``, which forbids ``buttons: []``. No message of
  ``CollectingDispatcher.utter_message`` (every key present, unset ones null) can satisfy it.
  Corrected to one object whose keys have the alternatives' types, each also nullable.

Example::

    contract = RasaActionContract.load()
    contract.violations("request", {"next_action": 5})  # -> ["request: 5 is not of type 'string' at next_action"]
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.doubles.tgi_contract import to_json_schema

_REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIRS = (_REPO_ROOT / "tests" / "contracts", _REPO_ROOT / "shared" / "contracts",
                 _REPO_ROOT.parent / "shared" / "contracts")
_BASE = "https://contracts.supportbot.invalid/"
_SERVER, _RASA = "rasa-action-server.yml", "rasa.yml"
_OPERATION = "#/paths/~1/post"

Part = Literal["request", "200", "400", "500"]
_POINTERS: dict[str, str] = {
    "request": f"{_OPERATION}/requestBody/content/application~1json/schema",
    **{status: f"{_OPERATION}/responses/{status}/content/application~1json/schema" for status in ("200", "400", "500")},
}


def _string_keys(node: Any) -> Any:
    """YAML reads ``200:`` as an int key; JSON pointers need strings."""
    if isinstance(node, dict):
        return {str(key): _string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(item) for item in node]
    return node


def _fix_event_timestamp(server: dict[str, Any], rasa: dict[str, Any]) -> None:
    rasa["components"]["schemas"]["Event"]["properties"]["timestamp"] = {"type": "number", "nullable": True}


def _fix_response(server: dict[str, Any], rasa: dict[str, Any]) -> None:
    schemas = server["components"]["schemas"]
    properties: dict[str, Any] = {}
    for alternative in schemas["Response"]["allOf"]:
        name = alternative["$ref"].rsplit("/", 1)[-1]
        for key, schema in schemas[name].get("properties", {}).items():
            properties[key] = {**schema, "nullable": True}
    schemas["Response"] = {"type": "object", "properties": properties}


ERRATA = {"event-timestamp": _fix_event_timestamp, "response-allof": _fix_response}
"""Corrections applied by :meth:`RasaActionContract.load` (see the module docstring)."""


class RasaActionContract:
    """Validators of ``POST /webhook``: ``request`` and the ``200``, ``400``, ``500`` response bodies."""

    def __init__(self, server: dict[str, Any], rasa: dict[str, Any], errata: tuple[str, ...] = tuple(ERRATA)) -> None:
        server, rasa = _string_keys(copy.deepcopy(server)), _string_keys(copy.deepcopy(rasa))
        for name in errata:
            ERRATA[name](server, rasa)
        registry: Registry[Any] = Registry().with_resources(
            (_BASE + name, Resource.from_contents(to_json_schema(document), default_specification=DRAFT202012))
            for name, document in ((_SERVER, server), (_RASA, rasa)))
        self._validators = {part: Draft202012Validator({"$ref": _BASE + _SERVER + pointer}, registry=registry)
                            for part, pointer in _POINTERS.items()}

    @classmethod
    def load(cls) -> RasaActionContract:
        """The corrected contract (parsed once per test session)."""
        return _load_cached(tuple(ERRATA))

    @classmethod
    def published(cls) -> RasaActionContract:
        """The contract exactly as published, without :data:`ERRATA`."""
        return _load_cached(())

    def violations(self, part: Part, instance: Any) -> list[str]:
        """Every way ``instance`` breaks the schema of ``part``; empty when it conforms."""
        return [f"{part}: {error.message} at {'/'.join(map(str, error.absolute_path)) or '<root>'}"
                for error in self._validators[part].iter_errors(instance)]


def _read(name: str) -> dict[str, Any]:
    for directory in CONTRACT_DIRS:
        if (directory / name).is_file():
            document: dict[str, Any] = yaml.safe_load((directory / name).read_text(encoding="utf-8"))
            return document
    raise FileNotFoundError(f"{name} is missing; looked in {', '.join(map(str, CONTRACT_DIRS))}")


@lru_cache(maxsize=2)
def _load_cached(errata: tuple[str, ...]) -> RasaActionContract:
    return RasaActionContract(_read(_SERVER), _read(_RASA), errata)
