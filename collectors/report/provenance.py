"""Where a page's numbers come from, read from the database's own run records.

Everything here is decided from stored metadata, never from a flag alone:
whether the data are a local simulation (a testbed CA or a resolver on
loopback in a crawl's settings, the local lab's runs, the embedded sample's
record, test addresses under a reserved ``.test`` domain), the crawl settings,
the inputs and their SHA-256, and the lab senders' queue timers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from collectors import REPO_ROOT

# The sender timers that decide when a user hears about a stuck message: Postfix
# (postconf(5): delay_warning_time, maximal_queue_lifetime, bounce_queue_lifetime) and
# Exim (spec chapter 32 "delay_warning", "timeout_frozen_after", retry rules).
TIMER_KEYS = ("delay_warning_time", "maximal_queue_lifetime", "bounce_queue_lifetime",
              "delay_warning", "timeout_frozen_after", "retry_rules", "queue_run_delay",
              "minimal_backoff_time", "maximal_backoff_time")
# RFC 6761/2606 names that are never real mail domains.
RESERVED_SUFFIXES = (".test", ".example", ".invalid", ".localhost")
CRAWL_SETTINGS = ("resolver", "ca_bundle", "probe_smtp", "https_port", "smtp_port", "timeout",
                  "concurrency", "rate")


@dataclass(frozen=True)
class Timer:
    """One sender timer as stored with a run: which profile, which setting, its value."""

    profile: str
    name: str
    value: str
    run_id: str


def git_commit(root: Path = REPO_ROOT) -> str:
    """The checkout's commit (with ``+dirty`` when files differ), or '' outside a git checkout."""
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def relative_db_path(db_path: str, display: str = "") -> str:
    """The database path as a reader can use it: relative to the repository (or ``display``)."""
    if display:
        return display
    return os.path.relpath(os.path.abspath(db_path), REPO_ROOT)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value if value is not None else {}


def crawl_settings(parameters: Any) -> dict[str, Any]:
    """The settings a crawl ran with that change what it sees (resolver, CA bundle, SMTP probing...)."""
    params = _json(parameters)
    settings = params.get("settings", params) if isinstance(params, dict) else {}
    return {k: settings[k] for k in CRAWL_SETTINGS if k in settings}


def _loopback(resolver: str) -> bool:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` on loopback (127.0.0.0/8, ::1) or ``localhost``."""
    text = str(resolver).strip()
    if text.startswith("["):
        host = text[1:text.find("]")]
    else:
        host = text.split(":", 1)[0] if text.count(":") == 1 else text
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _testbed_ca(path: str) -> bool:
    parts = Path(str(path)).parts
    return "testbed" in parts or "pki" in parts


def simulation_reasons(runs: Iterable[dict[str, Any]], lab_addresses: Iterable[str] = ()) -> list[str]:
    """Why these runs are a local simulation (empty: real data). ``runs`` are rows of ``runs``."""
    reasons = []
    for run in runs:
        params = _json(run.get("parameters"))
        kind, rid = run.get("kind"), run.get("run_id")
        if kind == "sample" and params.get("local_simulation"):
            reasons.append(f"{rid}: imported from the embedded sample, which is labelled a local simulation")
        elif kind == "lab":
            reasons.append(f"{rid}: a run of the local audit lab")
        elif kind == "crawl":
            s = crawl_settings(params)
            if s.get("resolver") and _loopback(s["resolver"]):
                reasons.append(f"{rid}: crawled through a resolver on loopback ({s['resolver']})")
            if s.get("ca_bundle") and _testbed_ca(s["ca_bundle"]):
                reasons.append(f"{rid}: certificates checked against a testbed CA ({Path(s['ca_bundle']).name})")
    reserved = sorted({a.rsplit("@", 1)[-1] for a in lab_addresses
                       if str(a).lower().rstrip(".").endswith(RESERVED_SUFFIXES)})
    if reserved:
        shown = ", ".join(reserved[:3]) + (" ..." if len(reserved) > 3 else "")
        reasons.append(f"lab test addresses under a reserved domain (RFC 6761): {shown}")
    return reasons


def _walk(node: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in TIMER_KEYS and not isinstance(value, dict):
                yield path, key, value
            else:
                yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, str(i)))


def _profile(path: tuple[str, ...]) -> str:
    """The sender profile a timer belongs to: the key under ``profiles``/``senders``, else all."""
    for i, key in enumerate(path[:-1]):
        if key in ("profiles", "senders") and not path[i + 1].isdigit():
            return path[i + 1]
    named = [p for p in path if p not in ("lab", "timers", "details", "settings", "parameters")
             and not p.isdigit()]
    return named[-1] if named else "all lab senders"


def lab_timers(runs: Iterable[dict[str, Any]]) -> list[Timer]:
    """Every sender timer stored in the parameters of the given runs (lab, ingest, sample)."""
    out: dict[tuple[str, str], Timer] = {}
    for run in runs:
        for path, key, value in _walk(_json(run.get("parameters")), ()):
            if value in (None, ""):
                continue
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out[(_profile(path), key)] = Timer(_profile(path), key, shown, str(run.get("run_id")))
    return sorted(out.values(), key=lambda t: (t.profile, TIMER_KEYS.index(t.name)))


def inputs_of(value: Any) -> list[dict[str, Any]]:
    """A run's ``inputs`` JSON as a list of {name, sha256, bytes}."""
    items = _json(value)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _run_entry(run: dict[str, Any]) -> dict[str, Any]:
    params = _json(run.get("parameters"))
    entry = {
        "run_id": run["run_id"], "kind": run.get("kind", "crawl"), "started_at": str(run["started_at"]),
        "status": run.get("status", ""), "list": run.get("input_list", ""),
        "tool_version": run.get("tool_version", ""), "inputs": inputs_of(run.get("inputs")),
    }
    if entry["kind"] == "crawl":
        entry["list_date"] = str(params.get("list_date") or params.get("date") or "")
        entry["settings"] = crawl_settings(params)
    return entry


def build_provenance(ctx: Any) -> dict[str, Any]:
    """A page's provenance from its :class:`ReportContext`: runs with their inputs' SHA-256
    and settings, lab period and timers, tool version, commit, database, simulation verdict."""
    from collectors import __version__

    crawl = [_run_entry({**r, "kind": "crawl"}) for r in ctx.crawl_runs.to_dict("records")]
    lab = [_run_entry(r) for r in ctx.lab_runs.to_dict("records")]
    return {
        "notebook": ctx.notebook,
        "month": ctx.month,
        "month_asked": ctx.month_given,
        "current_run": ctx.current_run,
        "crawl_runs": crawl,
        "lab_runs": lab,
        "lab_period": ctx.lab_period_text(),
        "lab_timers": ctx.timers().drop(columns=["run_id"]).to_dict("records"),
        "report_tool_version": __version__,
        "git_commit": git_commit(),
        "database": ctx.parameters["db_path"],
        "parameters": ctx.parameters,
        "local_simulation": ctx.local_simulation,
        "simulation_reasons": ctx.simulation_reasons,
        "data_note": ctx.data_note,
    }
