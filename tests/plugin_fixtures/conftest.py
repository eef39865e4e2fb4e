"""The modules in this folder are plugin sources that tests/core/test_plugins.py installs as
fake distributions; pytest must not import them itself (``--doctest-modules`` would, and
their registrations would then land in the global registry, owned by nobody)."""

collect_ignore_glob = ["refsr_fixture_*.py"]
collect_ignore = ["texture_plugin"]
