"""The real-MicroPython runner must be able to fail: otherwise firmware tests prove nothing."""

import textwrap

from tonebridge.testing.micropython import run_micropython


def test_code_runs_under_micropython_not_cpython():
    run = run_micropython("import sys\nprint(sys.implementation.name)\n")
    assert run.ok, run.stderr
    assert run.stdout.strip() == "micropython"


def test_cpython_only_import_is_a_failure():
    run = run_micropython("import dataclasses\n")
    assert not run.ok
    assert "dataclasses" in run.stderr


def test_firmware_package_is_on_the_board_path():
    run = run_micropython("import tonebridge_fw\nprint(tonebridge_fw.__name__)\n")
    assert run.ok, run.stderr
    assert run.stdout.strip() == "tonebridge_fw"


FIRMWARE_STYLE_TESTS = textwrap.dedent(
    """
    def test_passes():
        assert 1 + 1 == 2

    def test_assertion_fails():
        assert [1, 2] == [1, 3], "lists differ"

    def test_cpython_only_module():
        import dataclasses  # valid CPython, missing in MicroPython

    def test_micropython_only_module():
        import micropython  # missing in CPython, present in MicroPython
    """
)


def test_plugin_reports_micropython_failures_as_pytest_failures(pytester):
    pytester.makeconftest('pytest_plugins = ["tonebridge.testing.pytest_micropython"]\n')
    pytester.mkdir("firmware")
    (pytester.path / "firmware" / "test_snippet.py").write_text(FIRMWARE_STYLE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    # CPython: passes, assertion fails, dataclasses passes, micropython fails.
    # MicroPython: passes, assertion fails, dataclasses fails, micropython passes.
    assert outcomes.get("passed") == 4, result.stdout.str()
    assert outcomes.get("failed") == 4, result.stdout.str()
    out = result.stdout.str()
    assert "FAILED firmware/test_snippet.py::test_assertion_fails[micropython]" in out
    assert "FAILED firmware/test_snippet.py::test_cpython_only_module[micropython]" in out
    assert "PASSED firmware/test_snippet.py::test_micropython_only_module[micropython]" in out
    assert "lists differ" in out  # the MicroPython AssertionError text surfaces
    assert "no module named 'dataclasses'" in out  # the MicroPython traceback surfaces


def test_module_that_fails_to_import_fails_every_item(pytester):
    pytester.makeconftest('pytest_plugins = ["tonebridge.testing.pytest_micropython"]\n')
    pytester.mkdir("firmware")
    (pytester.path / "firmware" / "test_broken.py").write_text(
        "from typing import List\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "micropython")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 2, result.stdout.str()
