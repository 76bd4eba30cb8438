"""Differential-test referee: renders generated Liquid cases with python-liquid 2.3.6.

Reads JSON lines ``{"id", "template", "data", "partials"}`` on stdin and writes one JSON line per
case on stdout: ``{"id", "ok": true, "output"}`` or ``{"id", "ok": false, "error"}``. The default
``Environment`` follows Shopify's Ruby semantics: strict errors, lax undefined variables.

Where python-liquid is unsure - it prints floats, hashes and nested arrays with Python's own
spelling (``1e+20``, ``{'a': 1}``) - the referee prints them as Ruby does (``1.0e+20``,
``{"a"=>1}``), which Ruby Liquid 5.4 (referee.rb) confirms. Everything else is python-liquid's.
"""

import json
import sys

import markupsafe


def ruby_float(f):
    """A float as Ruby's Float#to_s spells it: 1.0e+16, 1.0e-05, 100.0, 0.0001."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    sign = "-" if f < 0 or (f == 0 and str(f).startswith("-")) else ""
    mantissa, _, exp = ("%r" % abs(f)).partition("e")
    digits = mantissa.replace(".", "")
    point = mantissa.index(".") if "." in mantissa else len(mantissa)
    decpt = point + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    if -3 <= decpt <= 15 and digits != "0":
        if decpt <= 0:
            return f"{sign}0.{'0' * -decpt}{digits}"
        whole, frac = digits[:decpt].ljust(decpt, "0"), digits[decpt:]
        return f"{sign}{whole}.{frac or '0'}"
    if digits == "0":
        return f"{sign}0.0"
    e = decpt - 1
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{'+' if e >= 0 else '-'}{abs(e):02d}"


def ruby_inspect(v):
    """Ruby's #inspect of a JSON value (Ruby 3.1): {"a"=>1, "b"=>nil}."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ruby_float(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(ruby_inspect(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(x)}" for k, x in v.items()) + "}"
    return str(v)


_soft_str = markupsafe.soft_str


def ruby_str(v):
    """to_s as Ruby spells host values: python-liquid would print Python's float and dict repr."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ruby_float(v)
    if isinstance(v, (dict, list)):
        return ruby_inspect(v)
    return _soft_str(v)


# Before python-liquid imports soft_str by name.
markupsafe.soft_str = ruby_str

import liquid  # noqa: E402
import liquid.builtin.filters.array as _array  # noqa: E402
import liquid.builtin.output as _output  # noqa: E402
import liquid.builtin.tags.cycle_tag as _cycle  # noqa: E402
import liquid.stringify as _stringify  # noqa: E402
from liquid import DictLoader, Environment  # noqa: E402

_to_liquid_string = _stringify.to_liquid_string


def to_liquid_string(val, autoescape):
    if isinstance(val, float):
        return ruby_float(val)
    if isinstance(val, dict):
        return ruby_inspect(val)
    if isinstance(val, list):
        return "".join(to_liquid_string(i, autoescape) for i in _flatten(val))
    return _to_liquid_string(val, autoescape)


def _flatten(items):
    for i in items:
        if isinstance(i, list):
            yield from _flatten(i)
        else:
            yield i


def _str_if_not(val):
    return val if isinstance(val, str) else ruby_str(val)


_output.to_liquid_string = to_liquid_string
_cycle.to_liquid_string = to_liquid_string
_array._str_if_not = _str_if_not

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
