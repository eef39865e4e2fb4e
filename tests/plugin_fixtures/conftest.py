"""The modules in this folder are plugin sources that tests/test_plugins.py installs as
fake distributions; pytest must not import them itself (``--doctest-modules`` would)."""

collect_ignore_glob = ["refsr_fixture_*.py"]
