"""conftest.isolated reports its child's outcome: a skip is a skip (with the child's
reason), a failure a failure, a pass a pass."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

CHILDREN = '''
import pytest
from conftest import isolated


@isolated
def test_passes() -> None:
    assert True


@isolated
def test_skips() -> None:
    pytest.skip("no Xvfb here (the child's reason)")


@isolated
def test_fails() -> None:
    assert 1 == 2, "the child's failure"
'''


def test_a_childs_skip_is_a_skip_and_its_failure_a_failure(tmp_path: Path) -> None:
    (tmp_path / "test_children.py").write_text(CHILDREN)
    report = tmp_path / "parent.xml"
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [tests, *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("PASSERSBY_ISOLATED", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--junitxml={report}", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_children.py")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = [k for k in ("failure", "error", "skipped") if case.find(k) is not None]
        outcomes[case.get("name")] = (kinds[0] if kinds else "passed",
                                      case.find(kinds[0]).get("message", "") if kinds else "")
    assert done.returncode == 1, done.stdout[-3000:]       # one test failed
    assert outcomes["test_passes"][0] == "passed", outcomes
    assert outcomes["test_skips"][0] == "skipped", outcomes
    assert "no Xvfb here (the child's reason)" in outcomes["test_skips"][1], outcomes
    assert outcomes["test_fails"][0] == "failure", outcomes
    assert "failed" in outcomes["test_fails"][1], outcomes
