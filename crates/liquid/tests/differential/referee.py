"""Differential-test referee: renders generated Liquid cases with python-liquid 2.3.6.

Reads JSON lines ``{"id", "template", "data", "partials"}`` on stdin and writes one JSON line per
case on stdout: ``{"id", "ok": true, "output"}`` or ``{"id", "ok": false, "error"}``. The default
``Environment`` follows Shopify's Ruby semantics: strict errors, lax undefined variables.
"""

import json
import sys

import liquid
from liquid import DictLoader, Environment

if liquid.__version__ != "2.3.6":
    sys.exit(f"referee.py wants python-liquid 2.3.6, found {liquid.__version__}")

DEFAULT = Environment()


def render(case):
    partials = case.get("partials") or {}
    env = Environment(loader=DictLoader(partials)) if partials else DEFAULT
    template = env.from_string(case["template"])
    return template.render(**case["data"])


def main():
    sys.setrecursionlimit(10000)
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        try:
            result = {"id": case["id"], "ok": True, "output": render(case)}
        except Exception as e:  # noqa: BLE001 - any failure is an "error" outcome to compare
            result = {"id": case["id"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        try:
            text = json.dumps(result)
        except (TypeError, ValueError) as e:
            text = json.dumps({"id": case["id"], "ok": False, "unusable": f"output not JSON: {e}"})
        out.write(text + "\n")
    out.flush()


if __name__ == "__main__":
    main()
