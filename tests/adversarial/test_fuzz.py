"""Generated hostile documents through `cinekit check` (a small sample in CI; `make fuzz` runs
the long campaign): never a traceback, an internal error or a hang; every rejection located."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.adversarial.generators import KINDS, documents, make_fuzz_project, run_check


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_fuzz_project(tmp_path_factory.mktemp("fuzz") / "p")


def test_the_unmutated_documents_pass(project):
    for rel, _ in KINDS.values():
        out = run_check(project, rel, (project / rel).read_bytes())
        assert out.exit_code == 0 and out.traceback is None, out


def _assert_clean(out):
    assert out.traceback is None, out.traceback
    assert not out.internal and not out.hang, out
    assert out.exit_code in (0, 1), out
    assert not out.unlocated, out.unlocated
    assert out.seconds < 5.0, out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mutated_documents(project, kind):
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(doc=documents(kind))
    def run(doc):
        rel, data = doc
        _assert_clean(run_check(project, rel, data))

    run()
