"""The pytest plugin: ``--rig``, the ``rig``/``console``/``power``/``dut`` fixtures, the
``requires`` marker, per-test rig health checks and console logs on failed tests.

Shaped like pytest's own plugins: options in one group, each with an ini twin; run state in
``config.stash`` (:data:`harness.session.STATE`); heavy imports (drivers, pyserial, pyvisa) only
when a test needs a rig. This module is the entry point (``pytest11: harness``); its parts, each a
plugin module of its own, are registered with it:

- :mod:`harness.plugin.options`: command-line options and ini keys, and reading them;
- :mod:`harness.plugin.lifecycle`: the run state's life (configure, xdist nodes, interrupts, close);
- :mod:`harness.plugin.collection`: scenario files as items, the ``requires`` marker, the bench preflight;
- :mod:`harness.plugin.fixtures`: the fixtures and the per-test health check;
- :mod:`harness.plugin.reporting`: journal test records, console sections, results.json, the summary.
"""

pytest_plugins = [
    "harness.plugin.options",
    "harness.plugin.lifecycle",
    "harness.plugin.collection",
    "harness.plugin.fixtures",
    "harness.plugin.reporting",
]
