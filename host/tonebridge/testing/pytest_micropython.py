"""pytest plugin: firmware tests run twice, under CPython and under real MicroPython.

Every `test_*.py` module in a directory named `firmware` under tests/ is collected
as usual by pytest (CPython) and once more by this plugin, which runs the same module
in the MicroPython WebAssembly runtime and reports each test function as an item
named `test_x[micropython]`. A MicroPython failure is a pytest failure carrying the
MicroPython traceback; a module that does not even import under MicroPython fails
every one of its items. Nothing is skipped silently: a missing runtime is an error.
"""

import ast
from pathlib import Path

import pytest

from tonebridge.testing.micropython import run_test_module


class MicroPythonFailure(Exception):
    pass


def _test_names(path: Path):
    tree = ast.parse(path.read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


class MicroPythonModule(pytest.File):
    def collect(self):
        for name in _test_names(self.path):
            yield MicroPythonItem.from_parent(self, name=f"{name}[micropython]", test_name=name)

    def results(self):
        # One MicroPython process per module; its results are shared by the items.
        if not hasattr(self, "_results"):
            self._results = run_test_module(self.path)
        return self._results


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name
        self.add_marker(pytest.mark.micropython)

    def runtest(self):
        results, run = self.parent.results()
        if self.test_name not in results:
            raise MicroPythonFailure(
                f"{self.test_name} did not run under MicroPython "
                f"(exit {run.returncode}).\n{run.stderr}{run.stdout[-2000:]}"
            )
        ok, traceback = results[self.test_name]
        if not ok:
            raise MicroPythonFailure(traceback)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return f"under MicroPython:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name}"


def pytest_collect_file(parent, file_path):
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("test_")
        and file_path.parent.name == "firmware"
    ):
        return MicroPythonModule.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter):
    passed = [r for r in terminalreporter.stats.get("passed", []) if "[micropython]" in r.nodeid]
    failed = [r for r in terminalreporter.stats.get("failed", []) if "[micropython]" in r.nodeid]
    if passed or failed:
        terminalreporter.write_line(
            f"MicroPython (WebAssembly port): {len(passed)} tests passed, {len(failed)} failed"
        )
