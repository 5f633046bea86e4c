"""Project-wide pytest set-up. The harness plugin itself is loaded by its entry point."""

pytest_plugins = ["pytester"]
