"""The crawler: the MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) posture of a domain list.

Data flow: :mod:`inputs` (a top list, normalised, bad entries quarantined) ->
:mod:`observe` (DNS through :mod:`dns`, the policy fetch through :mod:`policy_fetch`,
the optional SMTP probe through :mod:`smtp_probe`) -> :mod:`writer` (raw rows into
DuckDB in batches, one transaction per batch with the completion markers) ->
the ``posture`` view (collectors/store/views/010_crawl.sql) classifies.
:mod:`runner` ties these together for one run and for ``--resume``.
"""
