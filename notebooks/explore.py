# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore the data
#
# For students: what each table holds, queries to start from, and filters.
# Open it with `make lab` (JupyterLab) to use the widgets; the rendered report
# shows the same filters with their default values. Everything is plain SQL
# on one DuckDB file: `ctx.sql("SELECT ...")` returns a pandas DataFrame.

# %% tags=["parameters"]
db_path = ""  # empty: the repository's data/observatory.duckdb, else the embedded sample
run_ids = []
month = ""
rank_buckets = [1000, 10000, 100000, 1000000]
lab_id = ""
output_dir = ""
local_simulation = False
data_note = ""
db_label = ""
posture_cache = ""

# %%
from collectors.report import ReportContext
from collectors.report import data_dictionary, show_dictionary

ctx = ReportContext.from_parameters("explore", globals(), materialise="current")
ctx.banner()
run = ctx.current_run

# %% [markdown]
# ## Data dictionary
#
# Every table and view, grouped, with every column, its type and meaning. Raw
# observations (`crawl_*`) are facts as seen; `posture` and the `report_*` views
# derive verdicts from them (one SQL definition each, in `collectors/store/views/`).
# The meanings are the schema's own comments (`duckdb_columns().comment`). In
# JupyterLab the table is searchable; in the report, each relation is listed.

# %%
dictionary = data_dictionary(ctx.con)
ctx.key("relations", int(dictionary["relation"].nunique()))
show_dictionary(dictionary, interactive=ctx.output_dir is None)

# %% [markdown]
# ## Ready queries
#
# Copy one into a cell and change it. `$run` is a parameter.
#
# ```sql
# -- enforce-mode domains in the top 10k, with their MX and policy patterns
# SELECT domain, rank, mx_hosts, policy_mx FROM posture
# WHERE run_id = $run AND policy_mode = 'enforce' AND rank <= 10000 ORDER BY rank;
#
# -- the funnel for your own buckets
# SELECT * FROM report_funnel([100, 5000, NULL]) WHERE run_id = $run;
#
# -- policy fetch failures with the HTTP status and detail the crawler saw
# SELECT p.domain, p.outcome, p.http_status, p.tls_subclass, p.detail
# FROM crawl_policy p WHERE p.run_id = $run AND p.outcome <> 'ok';
#
# -- lifecycle events that break RFC 8461
# SELECT * FROM report_lifecycle_events WHERE violates_rfc;
# ```

# %%
if ctx.has_crawl:
    example = ctx.sql("SELECT domain, rank, policy_mode, mx_hosts, policy_mx FROM posture"
                      " WHERE run_id = $run AND policy_mode = 'enforce' ORDER BY rank, domain LIMIT 20", run=run)
    ctx.table(example, "example_enforce", caption="Enforce-mode domains, best ranked first (first 20)")

# %% [markdown]
# ## Filters
#
# By list (crawl run), rank and misconfiguration class.

# %%
# the classes the crawler's views found in the chosen runs (their one definition: posture)
CLASSES = ["(any)", *ctx.sql("SELECT DISTINCT class FROM report_misconfig_classes"
                             " WHERE run_id IN (SELECT unnest($runs)) ORDER BY class",
                             runs=ctx.run_ids)["class"]] if ctx.has_crawl else ["(any)"]


def filtered(run_id: str, max_rank: int, misconfig_class: str):
    """Domains of one run up to a rank, optionally of one misconfiguration class."""
    return ctx.sql(
        "SELECT domain, rank, sts_record, policy_fetch, policy_mode, mx_policy_match,"
        " misconfig_classes FROM posture WHERE run_id = $run AND rank <= $max_rank"
        " AND ($cls = '(any)' OR list_contains(string_split(coalesce(misconfig_classes, ''), ';'), $cls))"
        " ORDER BY rank, domain LIMIT 200",
        run=run_id, max_rank=max_rank, cls=misconfig_class)


if ctx.has_crawl:
    if ctx.output_dir is None:  # interactive (JupyterLab): widgets
        # The table is one output the callback updates in place (a display handle), not an
        # Output widget: headless runners (nbclient, nbconvert --execute) mimic an Output
        # widget by writing to the kernel's shell channel, which can hide the cell's reply
        # from them until their timeout (nbclient issue 312).
        import ipywidgets as widgets
        from IPython.display import HTML, display

        runs = ctx.crawl_runs
        pick = widgets.Dropdown(
            options=[(f"{r.input_list} ({str(r.started_at)[:10]})", r.run_id) for r in runs.itertuples()],
            value=run, description="list")
        top = widgets.IntSlider(value=10_000, min=100, max=max(ctx.rank_buckets), step=100,
                                description="rank <=")
        cls = widgets.Dropdown(options=CLASSES, value="(any)", description="class")
        display(widgets.VBox([pick, top, cls]))
        shown = display(HTML(""), display_id=True)

        def refresh(*_):
            ctx.table(filtered(pick.value, top.value, cls.value), "filtered", handle=shown)

        for w in (pick, top, cls):
            w.observe(refresh, names="value")
        refresh()
    else:
        shown = filtered(run, 10_000, "mx_not_covered")
        ctx.table(shown, "filtered", caption="Filter: this run, rank <= 10,000, class mx_not_covered")
