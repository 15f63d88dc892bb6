#!/usr/bin/env python3
"""Validate JSON documents against the official schemas in tests/schemas.

usage: validate_schema.py SCHEMA_FILE DOCUMENT...   (SCHEMA_FILE relative to tests/schemas)
Exits 0 when every document validates, 1 with the errors otherwise.
"""
import json
import pathlib
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import jsonschema  # noqa: E402

root = pathlib.Path(__file__).resolve().parent / "schemas"
store = {}
for path in root.rglob("*.json"):
    schema = json.loads(path.read_text())
    for key in ("$id", "id"):
        if isinstance(schema.get(key), str):
            store[schema[key].rstrip("#")] = schema
    # Relative references resolve against the referring schema's id.
    store[path.name] = schema
    for base in ("https://opencontainers.org/schema/image/", "https://opencontainers.org/schema/",
                 "http://cyclonedx.org/schema/"):
        store[base + path.name] = schema

schema_path = root / sys.argv[1]
schema = json.loads(schema_path.read_text())
validator_class = jsonschema.validators.validator_for(schema)


def by_file_name(url):
    # The schemas refer to each other by relative names under ids that do not
    # all share one base; every schema file has a unique name, so use it.
    name = url.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
    return store[name]


resolver = jsonschema.RefResolver(
    base_uri=schema.get("$id", schema.get("id", "")),
    referrer=schema,
    store=store,
    handlers={"https": by_file_name, "http": by_file_name},
)
validator = validator_class(schema, resolver=resolver, format_checker=jsonschema.FormatChecker())
failed = False
for document_path in sys.argv[2:]:
    document = json.loads(pathlib.Path(document_path).read_text())
    for error in validator.iter_errors(document):
        failed = True
        location = "/".join(str(part) for part in error.absolute_path)
        print(f"{document_path}: {location}: {error.message}")
sys.exit(1 if failed else 0)
