"""Project-wide pytest set-up. The harness plugin itself is loaded by its entry point."""

# numpy refuses to be imported twice in one process, and pandas re-imported keeps stale classes;
# pytester's in-process runs drop every module first imported inside them, and the harness imports
# pandas when a run writes its results, so an in-process run that happened to import them first broke
# the next one. Imported here, they are in every snapshot.
import numpy  # noqa: F401
import pandas  # noqa: F401

pytest_plugins = ["pytester"]
