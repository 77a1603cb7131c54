"""Under ``-n 2 --dist loadgroup`` (make test), every hostile test runs on one
worker, so the class is graded once (the marker exists only with xdist, and
the suite runs with --strict-markers)."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before xdist turns the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("hostile_class"))
