"""Build-time hook (named in pyproject.toml's [tool.setuptools.cmdclass]): the wheel leaves out
every module named `fakes`. The fakes are test doubles that tests import from the source tree;
setuptools can only exclude whole packages, so this filters single modules out of build_py."""

from __future__ import annotations

from setuptools.command.build_py import build_py

TEST_ONLY_MODULES = frozenset({"fakes"})


class BuildPy(build_py):
    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if m[1] not in TEST_ONLY_MODULES]
