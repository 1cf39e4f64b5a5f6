"""Every example in a docstring of course_lib and grader runs and shows what it says."""

import doctest
import importlib
import pkgutil

import pytest

import course_lib
import grader

MODULES = sorted(m.name for package in (course_lib, grader)
                 for m in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
