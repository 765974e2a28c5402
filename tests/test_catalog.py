"""The built-in catalog: at least 40 functions, picklable, and every one passes the cross-check."""

import json
import multiprocessing
import pickle
import subprocess
import sys

import pytest

from symjac import _catalog
from symjac._cli import main

pytest.importorskip("torch")


def test_catalog_covers_the_required_functions():
    assert len(_catalog.CATALOG) >= 40
    assert len(set(_catalog.names())) == len(_catalog.CATALOG)
    text = " ".join(e.expr for e in _catalog.CATALOG)
    for op in ("inv(", "det(", "log(det(", "solve(", "softmax(", "logsumexp(", "norm(", "kron(", "@", "exp(", "relu("):
        assert op in text, op
    assert {e.group for e in _catalog.CATALOG} == {"elementwise", "reduction", "product", "linalg", "composition"}


def test_entries_are_plain_data_and_functions_pickle():
    for e in _catalog.CATALOG:
        assert pickle.loads(pickle.dumps(e)) == e
        f = pickle.loads(pickle.dumps(e.function()))
        assert (f.output == e.function().output).all()


def test_unknown_name():
    with pytest.raises(ValueError, match="name: no catalog function is called 'nope'; the catalog has exp, log"):
        _catalog.entry("nope")


@pytest.mark.timeout(300)
def test_every_catalog_function_passes_a_small_profile():
    failures = {}
    for name in _catalog.names():
        report = _catalog.run_entry(name, samples=4, seed=1)
        if report.verdict != "pass":
            failures[name] = str(report)
    assert not failures, "\n\n".join(failures.values())


def _run_in_worker(name):
    return json.dumps(_catalog.run_entry(name, samples=5, seed=2).to_dict())


@pytest.mark.timeout(120)
def test_a_fresh_process_rebuilds_the_same_run():
    names = ["logdet", "softmax_layer"]
    here = [json.loads(_run_in_worker(n))["verdict"] for n in names]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        first = pool.map(_run_in_worker, names)
        second = pool.map(_run_in_worker, names[::-1])[::-1]
    assert first == second  # byte for byte, in fresh processes, whichever worker ran it
    assert here == [json.loads(r)["verdict"] for r in first]


def test_cli_suite_json(capsys):
    assert main(["suite", "--only", "sqrt", "--only", "det", "--samples", "3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["samples"] == 3 and set(document["results"]) == {"sqrt", "det"}
    assert all(r["verdict"] == "pass" for r in document["results"].values())


@pytest.mark.parametrize("argv", [["suite", "--samples", "0"], ["suite", "--seed", "a"], ["suite", "--only", "nope"]])
def test_cli_suite_usage_errors(argv, capsys):
    assert main(argv) == 2


@pytest.mark.timeout(300)
def test_pyargs_suite_runs_for_users(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs", "symjac.suite",
         "-k", "logdet or (sign and not twin)", "--symjac-samples", "5"],
        capture_output=True, text=True, cwd=tmp_path, timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " passed" in out.stdout
