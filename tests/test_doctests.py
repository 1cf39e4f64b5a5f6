"""Every example in a docstring of course_lib and grader runs and shows what it says."""

import doctest
import importlib
import pkgutil

import pytest

import course_lib
import grader

MODULES = [f"{package.__name__}.{m.name}" for package in (course_lib, grader)
           for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name) if m.name != "__main__"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
