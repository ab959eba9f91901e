"""The catalogue: every named edge case, with the verdict a correct crawler reaches."""

from __future__ import annotations

from importlib import resources

from collectors.testbed.scenario import Scenario, from_dict, read_yaml

CATALOGUE_FILE = "catalogue.yaml"


def load_catalogue() -> Scenario:
    """The catalogue scenario (collectors/testbed/catalogue.yaml), validated.

    Each domain's ``expected`` merges the file's ``expected_defaults`` with the case's
    own values: the defaults describe a plain, healthy domain without MTA-STS.
    """
    text = resources.files("collectors.testbed").joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    data = read_yaml(text)
    defaults = data.pop("expected_defaults", {})
    for d in data.get("domains", ()):
        d.setdefault("case", d["name"].rsplit(".", 1)[0])
        merged = {**defaults, **(d.get("expected") or {})}
        d["expected"] = {k: v for k, v in merged.items() if v is not None}
    return from_dict(data, default_name="catalogue")
