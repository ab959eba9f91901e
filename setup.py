"""The one compiled part: the Postfix log reader (collectors/lab_ingest/_postfix_fast.c).

Optional: where it cannot be built (no C compiler or Python headers) the install still
succeeds and the ingest uses the pure-Python reader, which gives the same rows, slower.
Everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "collectors.lab_ingest._postfix_fast",
    sources=["collectors/lab_ingest/_postfix_fast.c"],
    extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-unused-function"],
    optional=True,
)])
