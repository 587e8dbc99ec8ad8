"""Runs the Python verifier of docs/protocol.md §5.4 over the protocol's test vectors.

    python3 run-snippet.py SNIPPET VECTORS TRUST_DIR SCHEMAS_DIR

SNIPPET is a file holding the ```python block of §5.4 as the document has it (the test
test/protocol-python.test.ts writes it from docs/protocol.md); VECTORS is test/vectors/vectors.json,
TRUST_DIR its trust store (test/vectors/trust), SCHEMAS_DIR the alert schemas (schemas). It builds
`keys`, `revoked`, `schema_ids` and `now` as §5.4 describes them, calls `verify_origin` on every
vector, at the file's `verifyAt`, and prints one JSON array, one entry per vector in file order:
{"name", "result": "accepted", "alert"}, {"name", "result": "refused", "code"} (the snippet raised
its `Refused`), or {"name", "result": "error", "error"} (any other exception, with its traceback).
It judges nothing: the test compares each result with the vector's expected outcome.
"""

import importlib.util
import json
import os
import re
import sys
import traceback
from datetime import datetime

ALERT_SCHEMA_ID = re.compile(r"https://schemas\.alert-hub\.example/alerts/([a-z0-9-]+)/v([0-9]+)\.json")


def load_snippet(path):
    spec = importlib.util.spec_from_file_location("protocol_snippet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_trust(trust_dir):
    """`keys` (kid -> JWK with its file's principal and role) and `revoked` (a set of kids)."""
    keys, revoked = {}, set()
    for name in sorted(os.listdir(trust_dir)):
        if name != "revoked.json" and not name.endswith(".jwks.json"):
            continue
        with open(os.path.join(trust_dir, name), encoding="utf-8") as f:
            doc = json.load(f)
        if name == "revoked.json":
            revoked = {entry["kid"] for entry in doc["revoked"]}
        else:
            for key in doc["keys"]:
                keys[key["kid"]] = {**key, "principal": doc["principal"], "role": doc["role"]}
    return keys, revoked


def load_schema_ids(schemas_dir):
    """(type, version) -> `$id` of every alert schema (§2.1: .../alerts/<type>/v<N>.json)."""
    schema_ids = {}
    for name in sorted(os.listdir(schemas_dir)):
        if name.endswith(".schema.json"):
            with open(os.path.join(schemas_dir, name), encoding="utf-8") as f:
                schema_id = json.load(f).get("$id", "")
            m = ALERT_SCHEMA_ID.fullmatch(schema_id)
            if m:
                schema_ids[(m[1], int(m[2]))] = schema_id
    return schema_ids


def main(snippet_path, vectors_path, trust_dir, schemas_dir):
    snippet = load_snippet(snippet_path)
    keys, revoked = load_trust(trust_dir)
    schema_ids = load_schema_ids(schemas_dir)
    with open(vectors_path, encoding="utf-8") as f:
        doc = json.load(f)
    now = datetime.fromisoformat(doc["verifyAt"].replace("Z", "+00:00"))
    results = []
    for v in doc["vectors"]:
        envelope = bytes.fromhex(v["envelope"])
        envelope += bytes(max(0, v.get("paddedTo", 0) - len(envelope)))
        try:
            alert = snippet.verify_origin(envelope, keys, revoked, schema_ids, now)
            results.append({"name": v["name"], "result": "accepted", "alert": alert})
        except snippet.Refused as refused:
            results.append({"name": v["name"], "result": "refused", "code": refused.args[0]})
        except Exception:  # a fault of the snippet, never a verdict
            results.append({"name": v["name"], "result": "error", "error": traceback.format_exc()})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
