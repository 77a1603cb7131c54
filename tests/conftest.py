"""The suite's pytest setup: the harness plugin (options, header, the
run_scenario fixture) and pytester for the harness's own plugin tests."""

pytest_plugins = ["harness.plugin", "pytester"]
