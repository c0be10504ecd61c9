#!/usr/bin/env python3
"""Validates the Grafana dashboard against Grafana's own schema, as the
grafana-foundation-sdk 11.6 models it, and checks its structure.

    python tests/check_dashboard.py [dashboards/hotspot.json] [dashboards/provisioning]

Schema: the dashboard is decoded with the SDK (`Dashboard.from_json` with
every panel and data-query plugin registered), every decoded value is
checked against the SDK's type annotations (kinds, enums, literals,
required fields), and the decoded model is encoded again: a key that does
not survive the round trip is not in the schema (a typo, a misplaced
option) and is reported.

Structure: unique panel ids, sane non-overlapping gridPos on the 24-column
grid, the `${DS_PROMETHEUS}` data-source variable on every panel and
query, a non-empty `expr` and unique `refId` on every query of every
non-row panel, every `$variable` used in a query defined, and provisioning
files that point at this dashboard and data source.

Exits 0 and prints one `ok:` line when everything holds, else prints each
problem and exits 1.
"""

from __future__ import annotations

import enum
import json
import pathlib
import re
import sys
import types
import typing

from grafana_foundation_sdk.cog import encoder as cogencoder
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dm

ROOT = pathlib.Path(__file__).resolve().parent.parent
DS_VAR = "DS_PROMETHEUS"
DS_UID = "${DS_PROMETHEUS}"
# Variables Grafana defines itself.
BUILTIN_VARS = {
    "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms",
    "__range", "__range_s", "__range_ms", "__from", "__to", "__dashboard",
    "__name", "__org", "__user", "__timezone",
}

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


# ------------------------------------------------------------------ schema


def is_model(value: typing.Any) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.models.") and hasattr(value, "to_json")


def type_errors(value: typing.Any, ann: typing.Any, path: str) -> list[str]:
    """What is wrong with one decoded value, against an SDK annotation."""
    if ann is typing.Any or ann is object:
        # Panel options and custom field config are typed `object` but
        # decoded into the panel plugin's model: check that model.
        if is_model(value):
            return model_errors(value, path)
        return []
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return []
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:
            return type_errors(value, arms[0], path)
        for a in arms:
            # A decoded model picks its arm: report that arm's errors.
            if isinstance(a, type) and hasattr(a, "from_json") and isinstance(value, a):
                return type_errors(value, a, path)
        for a in args:
            if a is not type(None) and not type_errors(value, a, path):
                return []
        return [f"{path}: {value!r:.80} is none of {ann}"]
    if value is None:
        return [f"{path}: null where {ann} is required"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        inner = args[0] if args else typing.Any
        return [e for i, v in enumerate(value) for e in type_errors(v, inner, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        inner = args[1] if len(args) > 1 else typing.Any
        return [e for k, v in value.items() for e in type_errors(v, inner, f"{path}.{k}")]
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        try:
            ann(value)
            return []
        except ValueError:
            return [f"{path}: {value!r} is not a valid {ann.__name__} {[e.value for e in ann]}"]
    if ann is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r:.40}"]
    if ann is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r:.40}"]
    if ann is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r:.40}"]
    if ann is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r:.40}"]
    if isinstance(ann, type) and issubclass(ann, cogvariants.Dataquery):
        if isinstance(value, cogruntime.UnknownDataquery):
            return [f"{path}: a query of an unknown data source type"]
        return model_errors(value, path)
    if isinstance(ann, type) and hasattr(ann, "from_json"):
        if isinstance(value, dict):
            # Some fields (transformations, panel links) the SDK keeps as
            # decoded JSON: decode them with their model here.
            try:
                decoded = ann.from_json(value)
            except Exception as e:
                return [f"{path}: cannot be decoded as {ann.__name__}: {type(e).__name__}: {e}"]
            back = json.loads(json.dumps(decoded, cls=cogencoder.JSONEncoder))
            return model_errors(decoded, path) + round_trip_errors(value, back, path)
        if not isinstance(value, ann):
            return [f"{path}: expected {ann.__name__}, got {type(value).__name__}"]
        return model_errors(value, path)
    # Anything else (untyped bags) is accepted as decoded.
    return []


def model_errors(obj: typing.Any, path: str) -> list[str]:
    try:
        hints = typing.get_type_hints(type(obj), vars(sys.modules[type(obj).__module__]))
    except Exception as e:  # a broken SDK install
        return [f"{path}: cannot read the schema of {type(obj).__name__}: {e}"]
    errors = []
    for name, ann in hints.items():
        if name.startswith("_") or not hasattr(obj, name):
            continue
        errors += type_errors(getattr(obj, name), ann, f"{path}.{name}")
    return errors


def round_trip_errors(orig: typing.Any, back: typing.Any, path: str) -> list[str]:
    """Every key and value of `orig` must be in `back` (defaults may be added)."""
    if isinstance(orig, dict):
        if not isinstance(back, dict):
            return [f"{path}: became {type(back).__name__} in the schema"]
        errors = []
        for k, v in orig.items():
            if k not in back:
                errors.append(f"{path}.{k}: not in Grafana's schema (dropped when decoded)")
            else:
                errors += round_trip_errors(v, back[k], f"{path}.{k}")
        return errors
    if isinstance(orig, list):
        if not isinstance(back, list) or len(back) != len(orig):
            return [f"{path}: list changed in the round trip"]
        return [e for i, (a, b) in enumerate(zip(orig, back)) for e in round_trip_errors(a, b, f"{path}[{i}]")]
    if orig != back:
        return [f"{path}: {orig!r:.60} decoded as {back!r:.60}"]
    return []


def check_schema(raw: dict) -> dm.Dashboard | None:
    cogplugins.register_default_plugins()
    try:
        model = dm.Dashboard.from_json(raw)
    except Exception as e:
        problem(f"dashboard: the SDK cannot decode it: {type(e).__name__}: {e}")
        return None
    for e in model_errors(model, "dashboard"):
        problem(e)
    back = json.loads(json.dumps(model, cls=cogencoder.JSONEncoder))
    for e in round_trip_errors(raw, back, "dashboard"):
        problem(e)
    for i, p in enumerate(model.panels or []):
        if isinstance(p, dm.RowPanel):
            continue
        if cogruntime.panelcfg_config(p.type_val) is None:
            problem(f"panels[{i}] ({p.title}): unknown panel type {p.type_val!r}")
    return model


# --------------------------------------------------------------- structure


def var_refs(text: str) -> set[str]:
    refs = set()
    for m in re.finditer(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)", text):
        refs.add(next(g for g in m.groups() if g))
    return refs


def check_structure(raw: dict) -> tuple[int, int]:
    if not isinstance(raw.get("uid"), str) or not 8 <= len(raw["uid"]) <= 40:
        problem("dashboard: uid must be a string of 8-40 characters")
    if not raw.get("title"):
        problem("dashboard: no title")
    if not isinstance(raw.get("schemaVersion"), int) or raw["schemaVersion"] < 39:
        problem("dashboard: schemaVersion must be 39 or later (Grafana 11)")
    if "__inputs" in raw:
        problem("dashboard: __inputs is for manual import; provisioned dashboards use a data-source variable")

    variables = {v.get("name"): v for v in raw.get("templating", {}).get("list", [])}
    ds = variables.get(DS_VAR)
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem(f"templating: needs a data-source variable {DS_VAR} of type prometheus")
    for name, v in variables.items():
        if v.get("type") == "query":
            if v.get("datasource", {}).get("uid") != DS_UID:
                problem(f"templating.{name}: datasource uid must be {DS_UID}")
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if not q:
                problem(f"templating.{name}: no query")

    panels = raw.get("panels")
    if not isinstance(panels, list) or not panels:
        problem("dashboard: no panels")
        return 0, 0
    ids: dict[int, str] = {}
    boxes = []
    n_queries = 0
    for i, p in enumerate(panels):
        where = f"panels[{i}] ({p.get('title', '?')})"
        pid = p.get("id")
        if not isinstance(pid, int):
            problem(f"{where}: id must be an integer")
        elif pid in ids:
            problem(f"{where}: id {pid} is also used by {ids[pid]}")
        else:
            ids[pid] = where
        if not p.get("title"):
            problem(f"{where}: no title")
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "hwxy"):
            problem(f"{where}: gridPos needs integer h, w, x, y")
        else:
            if g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
                problem(f"{where}: gridPos {g} is off the 24-column grid")
            for other_where, o in boxes:
                if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                        and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                    problem(f"{where}: gridPos overlaps {other_where}")
            boxes.append((where, g))
        if p.get("type") == "row":
            if p.get("collapsed") and not p.get("panels"):
                problem(f"{where}: a collapsed row without panels")
            continue
        if p.get("datasource") != {"type": "prometheus", "uid": DS_UID}:
            problem(f"{where}: datasource must be {{type: prometheus, uid: {DS_UID}}}")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problem(f"{where}: no targets")
            continue
        refs = set()
        for j, t in enumerate(targets):
            tw = f"{where}.targets[{j}]"
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problem(f"{tw}: no expr")
                continue
            n_queries += 1
            if t.get("refId") in refs or not t.get("refId"):
                problem(f"{tw}: refId missing or repeated")
            refs.add(t.get("refId"))
            tds = t.get("datasource")
            if tds is not None and tds != p.get("datasource"):
                problem(f"{tw}: datasource differs from the panel's")
            for r in var_refs(expr):
                if r not in variables and r not in BUILTIN_VARS:
                    problem(f"{tw}: uses undefined variable ${r}")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problem(f"{tw}: unbalanced brackets in {expr!r}")
    return len(panels), n_queries


def check_provisioning(prov: pathlib.Path, dashboard_path: pathlib.Path, raw: dict) -> None:
    try:
        import yaml
    except ImportError:
        problem("provisioning: PyYAML is not installed in this environment")
        return
    ds_file = prov / "datasources" / "prometheus.yaml"
    db_file = prov / "dashboards" / "hotspot.yaml"
    for f in (ds_file, db_file):
        if not f.is_file():
            problem(f"provisioning: {f} is missing")
            return
    ds = yaml.safe_load(ds_file.read_text(encoding="utf-8"))
    sources = (ds or {}).get("datasources") or []
    want_uid = None
    for v in raw.get("templating", {}).get("list", []):
        if v.get("name") == DS_VAR:
            want_uid = (v.get("current") or {}).get("value")
    prom = [s for s in sources if s.get("type") == "prometheus"]
    if ds.get("apiVersion") != 1 or not prom:
        problem(f"{ds_file.name}: needs apiVersion 1 and a prometheus data source")
    elif not any(s.get("uid") == want_uid for s in prom):
        problem(f"{ds_file.name}: no prometheus data source with uid {want_uid!r} (the dashboard's default)")
    for s in prom:
        if not str(s.get("url", "")).startswith("http"):
            problem(f"{ds_file.name}: data source {s.get('name')} has no http url")
    db = yaml.safe_load(db_file.read_text(encoding="utf-8"))
    providers = (db or {}).get("providers") or []
    if db.get("apiVersion") != 1 or not providers:
        problem(f"{db_file.name}: needs apiVersion 1 and a provider")
    for pr in providers:
        if pr.get("type") != "file" or not (pr.get("options") or {}).get("path"):
            problem(f"{db_file.name}: provider {pr.get('name')} must be type file with options.path")


def main() -> int:
    dashboard_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dashboards" / "hotspot.json"
    prov = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "dashboards" / "provisioning"
    try:
        raw = json.loads(dashboard_path.read_text(encoding="utf-8"))
    except Exception as e:
        print(f"{dashboard_path}: not valid JSON: {e}")
        return 1
    if not isinstance(raw, dict):
        print(f"{dashboard_path}: not a JSON object")
        return 1
    check_schema(raw)
    n_panels, n_queries = check_structure(raw)
    check_provisioning(prov, dashboard_path, raw)
    if problems:
        for p in problems:
            print(f"{dashboard_path.name}: {p}")
        print(f"FAILED: {len(problems)} problem(s)")
        return 1
    print(f"ok: {dashboard_path.name}: {n_panels} panels, {n_queries} queries, Grafana schema (foundation SDK) and structure valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
