"""TGI's own OpenAPI document as a JSON Schema validator, so that a test double cannot drift from the
real server: every request it receives and every body it sends is checked against it.

OpenAPI 3.0 schemas are not quite JSON Schema: ``nullable: true`` has no JSON Schema meaning and
jsonschema ignores it, which would reject the ``"usage": null`` TGI really sends. :func:`to_json_schema`
rewrites it into ``"null"`` alternatives; everything else (``$ref`` into ``#/components/schemas``,
``oneOf``, numeric ``exclusiveMinimum``) is already valid JSON Schema 2020-12.

Example::

    contract = TgiContract.load()
    contract.violations("ChatRequest", {"messages": "hi"})  # -> ["ChatRequest: 'hi' is not of type 'array' at messages"]
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_REPO_ROOT = Path(__file__).resolve().parents[2]
# The contracts live in the workspace's shared/ folder, a sibling of the checkout or inside it.
CONTRACT_CANDIDATES = (
    _REPO_ROOT / "tests" / "contracts" / "tgi-openapi.json",
    _REPO_ROOT / "shared" / "contracts" / "tgi-openapi.json",
    _REPO_ROOT.parent / "shared" / "contracts" / "tgi-openapi.json",
)
_DOCUMENT_URI = "urn:supportbot:tgi-openapi"


def to_json_schema(node: Any) -> Any:
    """A copy of an OpenAPI 3.0 schema tree with ``nullable: true`` turned into JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is not True:
        return converted
    if isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        return converted
    # allOf/oneOf/$ref wrappers: allow null next to whatever the wrapper accepts.
    return {"anyOf": [converted, {"type": "null"}]}


class TgiContract:
    """Validators for the named schemas of ``components/schemas`` in TGI's OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        schema_document = to_json_schema(document)
        resource = Resource.from_contents(schema_document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
        self._names = set(schema_document["components"]["schemas"])
        self._validators: dict[str, Draft202012Validator] = {}
        for name, schema in schema_document["components"]["schemas"].items():
            Draft202012Validator.check_schema(schema)
            self._validators[name] = Draft202012Validator(
                {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{name}"}, registry=self._registry
            )

    @classmethod
    def load(cls) -> TgiContract:
        """The contract from ``shared/contracts/tgi-openapi.json`` (parsed once per test session)."""
        return _load_cached()

    def violations(self, schema_name: str, instance: Any) -> list[str]:
        """Every way ``instance`` breaks the schema ``schema_name``; empty when it conforms."""
        if schema_name not in self._names:
            raise KeyError(f"TGI's OpenAPI document has no schema named {schema_name!r}")
        return [
            f"{schema_name}: {error.message} at {'/'.join(map(str, error.absolute_path)) or '<root>'}"
            for error in self._validators[schema_name].iter_errors(instance)
        ]


@lru_cache(maxsize=1)
def _load_cached() -> TgiContract:
    for candidate in CONTRACT_CANDIDATES:
        if candidate.is_file():
            return TgiContract(json.loads(candidate.read_text(encoding="utf-8")))
    searched = ", ".join(str(path) for path in CONTRACT_CANDIDATES)
    raise FileNotFoundError(f"TGI's OpenAPI document is missing; looked in {searched}")
