"""environment.yml gives conda users exactly the pins of pyproject.toml."""

import re
import tomllib

from course_lib.manifest import COURSE_ROOT


def _pyproject_pins() -> set[str]:
    data = tomllib.loads((COURSE_ROOT / "pyproject.toml").read_text())
    project = data["project"]
    return set(project["dependencies"]).union(*project["optional-dependencies"].values())


def _environment_pins() -> set[str]:
    text = (COURSE_ROOT / "environment.yml").read_text()
    return set(re.findall(r"^\s+- ([A-Za-z0-9_.\[\]-]+==[^\s#]+)\s*$", text, flags=re.M))


def test_every_dependency_is_pinned_exactly():
    for pin in _pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][^\s,;]*", pin), f"{pin!r} is not an exact pin (name==version)"


def test_environment_yml_matches_pyproject():
    pyproject, conda = _pyproject_pins(), _environment_pins()
    assert conda == pyproject, (
        f"only in pyproject.toml: {sorted(pyproject - conda)}; only in environment.yml: {sorted(conda - pyproject)}"
    )


def test_environment_yml_pins_python_311():
    assert re.search(r"^\s+- python=3\.11\s*$", (COURSE_ROOT / "environment.yml").read_text(), flags=re.M)
