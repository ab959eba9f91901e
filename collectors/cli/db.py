"""``mtasts db init | info | migrate | dictionary | sample``: create, describe and upgrade the store; materialise the sample."""

from __future__ import annotations

import argparse
import json

from collectors.cli.common import CliError, add_db_option, open_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="create, describe or migrate the DuckDB store",
                       description="Create, describe or migrate the DuckDB store.")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True

    init = dbsub.add_parser("init", help="create the database with the current schema")
    add_db_option(init)
    init.set_defaults(func=_init)

    info = dbsub.add_parser("info", help="schema version, tables with row counts, recent runs")
    add_db_option(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)

    mig = dbsub.add_parser("migrate", help="apply pending forward migrations")
    add_db_option(mig)
    mig.set_defaults(func=_migrate)

    dic = dbsub.add_parser(
        "dictionary", help="every table, view and column with its description (Markdown or CSV)",
        description="Print the data dictionary: every table and view, grouped, each column with its "
                    "type and description, read from the database's own comments (COMMENT ON).")
    add_db_option(dic)
    dic.add_argument("--format", choices=("md", "csv"), default="md", help="output format (default md)")
    dic.add_argument("relations", nargs="*", metavar="RELATION", help="only these tables or views")
    dic.set_defaults(func=_dictionary)

    sample = dbsub.add_parser(
        "sample", help="materialise the embedded sample (data/sample/) as a DuckDB file",
        description="Import the embedded sample (data/sample/, a local simulation) into "
                    "data/sample.duckdb of the repository, the database notebooks open by default "
                    "when there is no data/observatory.duckdb. Rebuilt only when data/sample/ or "
                    "the schema changed since; 'make lab' runs it.")
    sample.set_defaults(func=_sample)


def _init(args: argparse.Namespace) -> int:
    with open_db(args.db) as store:
        print(f"database {args.db} at schema version {store.schema_version()}")
    return 0


def _info(args: argparse.Namespace) -> int:
    with open_db(args.db, must_exist=True, read_only=True) as store:
        info = store.info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"database:       {info['path']}")
    print(f"schema version: {info['schema_version']} (this tool knows {info['newest_known_version']})")
    print("tables:")
    for name, n in info["tables"].items():
        print(f"  {name:<32} {n:>12,} rows")
    print(f"views: {', '.join(info['views']) or '(none)'}")
    if info["runs"]:
        print("recent runs:")
        for r in info["runs"]:
            print(f"  {r['run_id']:<40} {r['kind']:<8} {r['status']:<9} {r['input_list']}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    with open_db(args.db, must_exist=True, read_only=True) as store:
        before = store.schema_version()
    if before == 0:
        raise CliError(f"{args.db} is not an observatory database (no schema); use 'mtasts db init'")
    with open_db(args.db) as store:
        after = store.schema_version()
    print(f"database {args.db}: schema version {before} -> {after}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from collectors.report import SAMPLE_DB, SampleError, materialise_sample

    try:
        built = materialise_sample()
    except SampleError as exc:
        raise CliError(str(exc)) from exc
    print(f"{SAMPLE_DB}: {'materialised from data/sample/' if built else 'up to date with data/sample/'}")
    return 0


def _dictionary(args: argparse.Namespace) -> int:
    import sys

    from collectors.report import data_dictionary, dictionary_markdown

    with open_db(args.db, must_exist=True, read_only=True) as store:
        df = data_dictionary(store.con)
    unknown = sorted(set(args.relations) - set(df["relation"]))
    if unknown:
        raise CliError(f"no table or view {', '.join(unknown)} in {args.db}")
    if args.relations:
        df = df[df["relation"].isin(args.relations)]
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        print(dictionary_markdown(df))
    return 0
