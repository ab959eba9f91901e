"""The MTA-STS audit lab on one machine: real Postfix receivers A-F, a policy server,
a TLS-RPT endpoint and sender profiles to audit, in one network namespace, with the
testbed's DNS and CA (see docs/lab-deploy.md for the same lab on real hosts).

    from collectors.lab import Lab
    lab = Lab(workdir)
    lab.up()
    lab.send("postfix-mta-sts", rounds=1)
    lab.wait_until_settled(timeout=300)
    lab.down()

``SERVERS`` are the six receiving servers' specs, ``BUILTIN_PROFILES`` the sender
profiles; a local lab runs in namespace ``DEFAULT_NETNS`` with its files under
``DEFAULT_WORKDIR``. :func:`render_deployment` writes the same lab's files for real hosts
(a :class:`DeployPlan`); a template that cannot be filled raises :class:`TemplateError`.
:class:`StatusService` is the lab host's live view of arrivals (:func:`serve_status`), read
from an :class:`EvidenceIndex` of the evidence files; :class:`StatusClient` asks it.
:func:`verify` checks a deployment's observations against the plan it was rendered from
(``PLAN_FILE``, :func:`plan_json`, :func:`load_plan`; one :class:`Check` a line);
:func:`lab_domains` are the plan's domains and :func:`server_address` each server's address.
"""

from collectors.lab.deploy import DeployPlan, render_deployment
from collectors.lab.design import BUILTIN_PROFILES, SERVERS, LabNames, QueueTimers, SenderProfile, ServerSpec
from collectors.lab.lab import DEFAULT_NETNS, DEFAULT_WORKDIR, EvidencePaths, Lab, LabState
from collectors.lab.processes import LabError
from collectors.lab.status import EvidenceIndex, StatusService
from collectors.lab.status import serve as serve_status
from collectors.lab.status_client import StatusClient
from collectors.lab.templates import TemplateError
from collectors.lab.verify import PLAN_FILE, Check, lab_domains, load_plan, plan_json, server_address, verify

__all__ = [
    "BUILTIN_PROFILES", "DEFAULT_NETNS", "DEFAULT_WORKDIR", "DeployPlan", "EvidenceIndex", "EvidencePaths", "Lab",
    "LabError", "LabNames", "LabState", "QueueTimers", "SERVERS", "SenderProfile", "ServerSpec", "StatusClient",
    "StatusService",
    "TemplateError", "render_deployment", "serve_status", "PLAN_FILE", "Check", "lab_domains", "load_plan",
    "plan_json", "server_address", "verify",
]
