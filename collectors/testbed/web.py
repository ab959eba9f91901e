"""Policy hosts: the nginx configuration, document files and per-SNI certificates.

One nginx server block serves every policy host of a world, however many: the
certificate is loaded by SNI name (``ssl_certificate .../$ssl_server_name.pem``) and the
HTTP behaviour is looked up by ``map $host`` (a hash, fine for 100,000 names). Behaviours
that repeat share one internal location; bodies that repeat share one file.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from collectors.testbed import plan as addr
from collectors.testbed.pki import Pki
from collectors.testbed.scenario import DEFAULT_BIG_SIZE, Domain, Scenario

POLICY_PATH = "/.well-known/mta-sts.txt"  # RFC 8461 3.3


def _nginx_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


@dataclass
class WebSite:
    routes: dict[str, str]        # host -> route under /_tb/
    locations: dict[str, str]     # host -> redirect target
    statuses: set[int]
    content_types: dict[str, int]  # content type -> index
    bodies: dict[str, bytes]       # file name -> bytes
    big: dict[str, int]            # file name -> size
    certs: dict[str, tuple[str, tuple[str, ...]]]  # SNI name -> (kind, names if mismatched)


def _body_file(body: str, bodies: dict[str, bytes]) -> str:
    data = body.encode()
    name = hashlib.sha256(data).hexdigest()[:20] + ".txt"
    bodies[name] = data
    return name


def _big_body(size: int) -> bytes:
    head = b"version: STSv1\nmode: enforce\nmx: mail.example.test\nmax_age: 86400\n"
    return (head + b"x" * max(0, size - len(head)))[:size]


def site_for(scenario: Scenario) -> WebSite:
    site = WebSite({}, {}, set(), {}, {}, {}, {})
    for d in scenario.domains:
        ph = d.policy_host
        if ph is None:
            continue
        host = f"mta-sts.{d.name}"
        site.certs[host] = (ph.certificate, _mismatch_names(d))
        route = _route(d, site)
        if route:
            site.routes[host] = route
    for h in scenario.https_hosts:
        site.certs.setdefault(h, ("valid", ()))
    return site


def _mismatch_names(d: Domain) -> tuple[str, ...]:
    """A name-mismatch certificate shows what real ones do: the web site's or the provider's."""
    ph = d.policy_host
    if ph is not None and ph.cname:
        return (ph.cname,)
    return (d.name, f"www.{d.name}")


def _route(d: Domain, site: WebSite) -> str | None:
    ph = d.policy_host
    assert ph is not None
    host = f"mta-sts.{d.name}"
    b = ph.http
    if b == "ok":
        return "ok/" + _body_file(ph.body or "", site.bodies)
    if b == "content_type":
        assert ph.content_type
        idx = site.content_types.setdefault(ph.content_type, len(site.content_types))
        return f"ct{idx}/" + _body_file(ph.body or "", site.bodies)
    if b == "status":
        assert ph.status
        site.statuses.add(ph.status)
        return f"status{ph.status}"
    if b == "redirect":
        code = ph.status or 301
        site.statuses.add(code)
        site.locations[host] = ph.location or ""
        return f"redirect{code}"
    if b in ("big_static", "big_chunked"):
        size = ph.size or DEFAULT_BIG_SIZE
        name = f"big-{size}.txt"
        site.big[name] = size
        return ("big/" if b == "big_static" else "chunked/") + name
    if b == "stall_http":
        return "stall"
    return None  # stall / refused / unresolvable never reach nginx


def write_site(site: WebSite, workdir: Path, pki: Pki) -> None:
    www = workdir / "www"
    for sub in ("bodies", "big"):
        (www / sub).mkdir(parents=True, exist_ok=True)
    for name, data in site.bodies.items():
        (www / "bodies" / name).write_bytes(data)
    for name, size in site.big.items():
        (www / "big" / name).write_bytes(_big_body(size))
    certs = workdir / "nginx" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    manifest_path = certs / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    wanted = {name: [kind, list(mismatch)] for name, (kind, mismatch) in site.certs.items()}
    for name in set(manifest) - set(wanted):
        (certs / f"{name}.pem").unlink(missing_ok=True)
    # Certificates already issued with the same kind are kept (a restart stays fast).
    todo = [(n, k, tuple(m)) for n, (k, m) in wanted.items()
            if manifest.get(n) != [k, m] or (k != "none" and not (certs / f"{n}.pem").exists())]
    manifest_path.unlink(missing_ok=True)
    if len(todo) > 4000 and (os.cpu_count() or 1) > 1:
        workers = min(4, os.cpu_count() or 1)
        chunks = [todo[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_issue_into, [pki.directory] * workers, [certs] * workers, chunks))
    else:
        _issue_with(pki, certs, todo)
    manifest_path.write_text(json.dumps(wanted))


def _issue_into(pki_dir: Path, certs: Path, todo: list[tuple[str, str, tuple[str, ...]]]) -> None:
    _issue_with(Pki.open(pki_dir), certs, todo)


def _issue_with(pki: Pki, certs: Path, todo: list[tuple[str, str, tuple[str, ...]]]) -> None:
    key = pki.leaf_key_pem()
    for name, kind, mismatch in todo:
        pem = pki.issue(name, kind, mismatch_names=mismatch)
        path = certs / f"{name}.pem"
        if pem is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(pem + key)


def nginx_conf(site: WebSite, workdir: Path, listen: list[str], stall_upstream: str) -> str:
    nd = workdir / "nginx"
    (nd / "tmp").mkdir(parents=True, exist_ok=True)
    with open(nd / "routes.map", "w") as fh:
        for host, route in site.routes.items():
            fh.write(f"{host} {route};\n")
    with open(nd / "locations.map", "w") as fh:
        for host, loc in site.locations.items():
            fh.write(f"{host} {_nginx_str(loc)};\n")
    www = workdir / "www"
    locs = []
    for code in sorted(site.statuses):
        if 300 <= code < 400:
            locs.append(f"        location = /_tb/redirect{code} {{ internal; return {code} $tb_location; }}")
        locs.append(f"        location = /_tb/status{code} {{ internal; return {code}; }}")
    for ctype, idx in site.content_types.items():
        locs.append(f"        location /_tb/ct{idx}/ {{ internal; alias {www / 'bodies'}/; "
                    f"default_type {_nginx_str(ctype)}; }}")
    template = resources.files("collectors.testbed").joinpath("nginx.conf").read_text()
    subst = {
        "@WORKDIR@": str(workdir),
        "@LISTEN@": "\n".join(f"        listen {a} ssl;" for a in listen),
        "@LOCATIONS@": "\n".join(locs),
        "@STALL@": stall_upstream,
        "@MAPSIZE@": str(max(1024, 2 * len(site.routes) + 1024)),
    }
    for k, v in subst.items():
        template = template.replace(k, v)
    return template
