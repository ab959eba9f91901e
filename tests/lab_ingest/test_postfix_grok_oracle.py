"""Oracle: every Postfix message in ../shared/external/postfix/grok-patterns gets the values
that project expects, for every field we extract. A field we do not extract is named in
NOT_EXTRACTED (documented in docs/lab-ingest.md), never silently skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.lab_ingest import postfix_messages as pm
# The repository root is two folders up; ../shared sits next to it (see tests/conftest.py).
GROK_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "external" / "postfix" / "grok-patterns"

# Fields of that project that our parser does not extract, with why.
NOT_EXTRACTED = {
    # Their intermediate key=value blob; we extract its members instead (to, relay, delay...).
    "postfix_keyvalue_data",
    # Daemons we store raw (not needed to reconstruct sessions or deliveries).
    "postfix_anvil_cache_size", "postfix_anvil_conn_count", "postfix_anvil_conn_period",
    "postfix_anvil_conn_rate", "postfix_anvil_timestamp",
    "postfix_postscreen_access", "postfix_postscreen_cache_dropped", "postfix_postscreen_cache_retained",
    "postfix_postscreen_dnsbl_rank", "postfix_postscreen_toobusy_data", "postfix_postscreen_violation",
    "postfix_postscreen_violation_time", "postfix_dnsbl_domain", "postfix_dnsbl_result",
    "postfix_postsuper_action", "postfix_postsuper_summary_action", "postfix_postsuper_summary_count",
    "postfix_scache_addresses", "postfix_scache_connection", "postfix_scache_domains",
    "postfix_scache_hits", "postfix_scache_miss", "postfix_scache_success", "postfix_scache_timestamp",
    "postfix_verify_cache_dropped", "postfix_verify_cache_retained", "postfix_verify_cleanup_type",
    "postfix_version", "postfix_config_path", "postfix_termination_signal", "postfix_service",
    "postfix_server_ip", "postfix_server_port",
    # smtpd proxy (before-queue filter) outcomes, cleanup milter / prepend actions.
    "postfix_proxy_result", "postfix_proxy_smtp_stage", "postfix_proxy_message",
    "postfix_proxy_status_code", "postfix_proxy_status_code_enhanced",
    "postfix_milter_result", "postfix_milter_message", "postfix_milter_data",
    "postfix_prepend_type", "postfix_prepend_trigger", "postfix_prepend_value",
    "postfix_discarded_ehlo_keywords",
}
# Daemons whose lines we store raw (their queue id and diagnostics are still extracted).
RAW_DAEMONS = {"anvil", "postscreen", "postsuper", "scache", "verify", "master", "tlsproxy",
               "trivial_rewrite", "dnsblog", "sendmail", "script", "postdrop", "postmap", "tlsmgr"}
# Fields that only a daemon stored raw produces.
RAW_DAEMON_FIELDS = {"postfix_client_ip", "postfix_client_ip_unknown", "postfix_client_port", "postfix_client_hostname",
                     "postfix_message", "postfix_message_level", "postfix_queueid",
                     "postfix_status_message", "postfix_status_code", "postfix_status_code_enhanced",
                     "postfix_relay_hostname", "postfix_relay_ip", "postfix_relay_port",
                     "postfix_smtp_stage", "postfix_status_data", "postfix_action"}

_RESPONSE_FIELD = {"local": "postfix_local_response", "pipe": "postfix_pipe_response",
                   "error": "postfix_error_response"}


def _peer(prefix: str, name: str | None, addr: str | None, port: int | None = None) -> dict:
    out: dict = {}
    if name is not None:
        out[f"postfix_{prefix}_hostname"] = name
    if addr is not None:
        if prefix == "client" and addr == "unknown":
            out["postfix_client_ip_unknown"] = addr
        else:
            out[f"postfix_{prefix}_ip"] = addr
    if port is not None:
        out[f"postfix_{prefix}_port"] = port
    return out


def grok_fields(daemon: str, text: str) -> dict:
    """What our parser extracts from one message, under that project's field names."""
    ev = pm.parse_message(daemon, text)
    out: dict = {}
    if ev is None:
        m = pm._QID_PREFIX.match(text)
        return {"postfix_queueid": m.group(1)} if m else {}
    if isinstance(ev, (pm.Connect, pm.Disconnect)):
        out.update(_peer("client", ev.client_name, ev.client_addr, ev.client_port))
        if isinstance(ev, pm.Disconnect) and ev.commands:
            out["postfix_command_counter_data"] = ev.commands
    elif isinstance(ev, pm.SessionProblem):
        out.update(_peer("client", ev.client_name, ev.client_addr))
        out["postfix_smtpd_lostconn_data"] = ev.problem
        if ev.stage:
            out["postfix_smtp_stage"] = ev.stage
    elif isinstance(ev, pm.TlsEstablished):
        out.update(_peer("client" if ev.direction == "from" else "relay",
                         ev.peer_name, ev.peer_addr, ev.peer_port))
        out.update(postfix_tls_trustlevel=ev.trust, postfix_tls_version=ev.protocol,
                   postfix_tls_cipher=ev.cipher, postfix_tls_cipher_size=ev.cipher_bits)
        if ev.key_exchange:
            out["postfix_tls_key_exchange"] = ev.key_exchange
        if ev.server_signature:
            out["postfix_tls_server_signature"] = ev.server_signature
        if ev.server_signature_size:
            key = ("postfix_tls_server_signature_size" if ev.server_signature_size.isdigit()
                   else "postfix_tls_server_signature_curve")
            out[key] = ev.server_signature_size
        if ev.server_digest:
            out["postfix_tls_server_digest"] = ev.server_digest
    elif isinstance(ev, pm.TlsProblem):
        out.update(_peer("relay", ev.peer_name, ev.peer_addr, ev.peer_port))
        key = "postfix_tls_error" if ev.problem.startswith("certificate") else "postfix_smtp_lostconn_data"
        out[key] = ev.detail
    elif isinstance(ev, pm.ClientQueued):
        out["postfix_queueid"] = ev.queue_id
    elif isinstance(ev, pm.Rejected):
        out.update(postfix_queueid=ev.queue_id, postfix_action=ev.action, postfix_smtp_stage=ev.stage,
                   postfix_status_message=ev.status_message)
        out.update(_peer("client", ev.client_name, ev.client_addr))
        for key, value in (("postfix_status_code", ev.status_code),
                           ("postfix_status_code_enhanced", ev.enhanced_code),
                           ("postfix_status_data", ev.status_data)):
            if value is not None:
                out[key] = value
    elif isinstance(ev, pm.MessageIdSeen):
        out.update({"postfix_queueid": ev.queue_id, "postfix_message-id": ev.message_id})
    elif isinstance(ev, (pm.QueueActive, pm.Pickup)):
        out["postfix_queueid"] = ev.queue_id
    elif isinstance(ev, pm.Removed):
        out.update(postfix_queueid=ev.queue_id, postfix_message="removed")
    elif isinstance(ev, pm.Expired):
        out.update(postfix_queueid=ev.queue_id, postfix_from=ev.sender, postfix_status=ev.status)
    elif isinstance(ev, pm.Delivery):
        out.update(postfix_queueid=ev.queue_id, postfix_status=ev.status)
        out[_RESPONSE_FIELD.get(daemon, "postfix_smtp_response")] = ev.reason
    elif isinstance(ev, pm.Notice):
        out.update(postfix_queueid=ev.queue_id, postfix_bounce_queueid=ev.notice_queue_id,
                   postfix_bounce_recipient=ev.recipient, postfix_bounce_reason=ev.kind)
    elif isinstance(ev, pm.RemoteProblem):
        out.update(_peer("relay", ev.peer_name, ev.peer_addr, ev.peer_port))
        if ev.queue_id:
            out["postfix_queueid"] = ev.queue_id
        if ev.problem in ("said", "refused to talk", "SASL authentication failed"):
            out["postfix_smtp_response"] = ev.response
            if ev.stage:
                out["postfix_smtp_stage"] = ev.stage
        elif ev.problem == "connect":
            out["postfix_smtp_lostconn_data"] = ev.response
        elif ev.problem == "lost connection":
            out["postfix_smtp_lostconn_data"] = "lost connection"
            out["postfix_smtp_lostconn_reason"] = ev.stage
        elif ev.problem == "PIX workarounds":
            out["postfix_pix_workaround"] = ev.response
    elif isinstance(ev, pm.Diagnostic):
        if ev.queue_id:
            out["postfix_queueid"] = ev.queue_id
        if ev.level:
            out["postfix_message_level"] = ev.level
        out["postfix_message"] = ev.text
        out.update(_peer("client", ev.peer_name, ev.peer_addr))
    return out


def sub_pattern_fields(pattern: str, data: str) -> dict | None:
    """The sub-field patterns (a delivery line's tls=, delays=, relay= and smtpd's counters)."""
    if "POSTFIX_TLS_FEATURES" in pattern:
        got = pm.parse_tls_feature(data)
        return {f"postfix_{'tls_' if k in ('security_level', 'policy_undecided', 'downgrade_level') else ''}{k}": v
                for k, v in got.items() if v is not None}
    if "POSTFIX_DELAYS" in pattern:
        d = pm._delays(data)
        return dict(zip(("postfix_delay_before_qmgr", "postfix_delay_in_qmgr",
                         "postfix_delay_conn_setup", "postfix_delay_transmission"), d))
    if "POSTFIX_RELAY" in pattern:
        host, service, _port = pm.parse_relay(data)
        return {"postfix_relay_hostname": host, "postfix_relay_service": service}
    if "POSTFIX_COMMAND_COUNTER_DATA" in pattern:
        out: dict = {}
        for name, (accepted, total) in pm.parse_command_counts(data).items():
            key = "count" if name == "commands" else name
            out[f"postfix_cmd_{key}"] = total
            if accepted is not None:
                out[f"postfix_cmd_{key}_accepted"] = accepted
        return out
    return None


def _cases() -> list:
    files = sorted(GROK_DIR.glob("*.yaml")) if GROK_DIR.is_dir() else []
    return [pytest.param(f, id=f.stem) for f in files]


def _norm(value) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("path", _cases())
def test_grok_message(path: Path) -> None:
    case = yaml.safe_load(path.read_text("utf-8"))
    pattern, data, expected = case["pattern"], case["data"], case.get("results") or {}
    daemon = path.stem.rsplit("_", 1)[0]
    got = sub_pattern_fields(pattern, data)
    if got is None:
        daemon = pattern.split("POSTFIX_", 1)[1].split("}", 1)[0].lower()
        got = grok_fields(daemon, data)
    for field, value in expected.items():
        if field in NOT_EXTRACTED:
            continue
        if daemon in RAW_DAEMONS and field in RAW_DAEMON_FIELDS and field not in got:
            continue
        assert field in got, f"{path.name}: {field} not extracted (got {sorted(got)})"
        if isinstance(value, float):
            assert got[field] == pytest.approx(value), f"{path.name}: {field}"
        else:
            assert _norm(got[field]) == _norm(value), f"{path.name}: {field}"


def test_oracle_files_are_present() -> None:
    assert len(_cases()) >= 190, f"expected the 191 grok-pattern files under {GROK_DIR}"
