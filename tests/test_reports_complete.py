"""Reports complete everywhere (issue 15): verify reports plot, display their counterexample and
reproduction line, print lines a user can paste, say "verify", name torch builtins as torch does;
JSON lists the odd routes; torch's own deprecation warning stays out of the user's runs."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import symjac as sj
from symjac import _verify

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.timeout(120)

SPEC = sj.function("sigmoid(x)", x=(3,))


def scaled_sigmoid(x):  # a module-level implementation: importable by name
    return torch.sigmoid(x) * (1 + 1e-3)


@pytest.fixture(scope="module")
def failing_run():
    return sj.verify(scaled_sigmoid, SPEC, samples=5)


def test_plot_of_a_verify_report(failing_run):
    pytest.importorskip("matplotlib")
    single = sj.verify(torch.sigmoid, SPEC, at={"x": [0.1, 0.2, 0.3]})
    for report in (failing_run, single):
        labels = [ax.get_label() for ax in report.plot().axes if ax.get_label() != "<colorbar>"]
        assert labels == ["sparsity", "symbolic vs impl-reverse", "symbolic vs impl-forward"]


def test_notebook_display_of_a_sampled_verify_keeps_counterexample_and_reproduction(failing_run):
    bundle = failing_run._repr_mimebundle_()
    cx = failing_run.run.counterexample
    # Markdown escapes the punctuation of text (symjac._display._cell): read it back unescaped
    shown = {"text/plain": bundle["text/plain"], "text/markdown": re.sub(r"\\(.)", r"\1", bundle["text/markdown"])}
    for kind in ("text/plain", "text/markdown"):
        assert "minimal counterexample: x=" in shown[kind]
        assert cx.reproduce in shown[kind]
    assert "minimal counterexample" in bundle["text/latex"]


def test_headers_say_verify(failing_run):
    assert str(failing_run).startswith("symjac verify of test_reports_complete.scaled_sigmoid against sigmoid(x)")
    assert str(failing_run.run.counterexample).startswith("symjac verify of ")
    assert failing_run._repr_mimebundle_()["text/markdown"].startswith("**symjac verify of ")
    assert str(sj.check(SPEC, x=[0.1, 0.2, 0.3])).startswith("symjac check of ")
    assert failing_run.to_dict()["task"] == "verify"


def test_reproduction_lines_can_be_pasted(failing_run):
    assert "# impl, spec: yours" not in failing_run.reproduce
    assert failing_run.reproduce == (
        "import numpy, symjac, test_reports_complete; symjac.verify(test_reports_complete.scaled_sigmoid, "
        "symjac.function('sigmoid(x)', x=(3,)), samples=5, seed=0)"
    )
    point = failing_run.run.counterexample.reproduce
    assert point.startswith("import numpy, symjac, test_reports_complete; symjac.verify(test_reports_complete.scaled_sigmoid, "
                            "symjac.function('sigmoid(x)', x=(3,)), at={'x': [")
    # the point's line runs as written and gives the same verdict
    done = subprocess.run([sys.executable, "-c", point.replace("symjac.verify(", "print(symjac.verify(", 1) + ".verdict)"],
                          capture_output=True, text=True, timeout=100, cwd=os.path.dirname(__file__),
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                                                          os.path.dirname(__file__)])))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "fail"


def test_torch_builtins_are_named_as_torch_names_them():
    report = sj.verify(torch.sigmoid, SPEC, at={"x": [0.1, 0.2, 0.3]})
    assert report.function.startswith("torch.sigmoid against")  # found: _VariableFunctionsClass.sigmoid
    assert "symjac.verify(torch.sigmoid, symjac.function('sigmoid(x)', x=(3,)), at=" in report.reproduce
    assert report.reproduce.startswith("import numpy, symjac, torch; ")


def test_what_cannot_be_named_is_said_in_a_comment():
    report = sj.verify(lambda x: torch.sigmoid(x), SPEC, at={"x": [0.1, 0.2, 0.3]})
    assert report.reproduce.endswith("# impl: yours (test_what_cannot_be_named_is_said_in_a_comment.<locals>.<lambda>, "
                                      "which cannot be imported by name)")
    spec = sj.function(lambda x: sj.ops.sigmoid(x), x=(3,))
    report = sj.verify(torch.sigmoid, spec, at={"x": [0.1, 0.2, 0.3]})
    assert "symjac.verify(torch.sigmoid, spec, at=" in report.reproduce
    assert "# spec: yours (a Function built from a callable or a SymPy expression)" in report.reproduce


def test_notes_are_cut_at_a_word_boundary():
    error = RuntimeError("word " * 40)
    cut = _verify._first_line(error)
    assert cut.endswith(" ...") and len(cut) <= 124
    assert cut[:-4].split(" ")[-1] == "word"  # found: cut mid-word at 120 characters
    assert _verify._first_line(RuntimeError("short\nsecond")) == "short"


def test_one_entry_is_singular_in_every_display():
    report = sj.verify(lambda x: torch.sigmoid(x) + torch.tensor([1e-3, 0.0, 0.0], dtype=x.dtype), SPEC,
                       at={"x": [0.1, 0.2, 0.3]})
    assert report.verdict == "fail"
    bundle = report._repr_mimebundle_()
    assert "(1 entry)" in str(report) and "(1 entry)" in bundle["text/markdown"] and "(1 entry)" in bundle["text/latex"]
    assert "(1 entries)" not in "".join(bundle.values())


def test_odd_one_out_is_a_list_in_json(failing_run):
    data = json.loads(json.dumps(failing_run.to_dict()))
    assert data["schema"] == "symjac.report/2"
    assert data["odd_one_out"] == failing_run.odd_one_out.split(", ")
    assert isinstance(data["odd_one_out"], list) and data["odd_one_out"][0].startswith("impl-")
    assert sj.check(SPEC, x=[0.1, 0.2, 0.3]).to_dict()["odd_one_out"] is None


def test_no_torch_deprecation_warning_and_no_hypothesis_directory(tmp_path):
    code = (
        "import symjac as sj, torch, numpy as np\n"
        "f = sj.function('sin(x) * x', x=(3,))\n"
        "assert sj.check(f, x=np.ones(3)).verdict == 'pass'\n"
        "assert sj.verify(lambda x: torch.sin(x) * x, f, samples=5).verdict == 'pass'\n"
        "assert sj.verify(lambda x: torch.sin(x) * x * 1.01, f, samples=5).verdict == 'fail'\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True,
                          text=True, timeout=110, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=root))
    assert done.returncode == 0, done.stderr[-3000:]  # found: torch.jit.script's warning in every run
    assert done.stderr == ""
    # nothing written where the user runs it: no example database, no Hypothesis constants cache
    written = {p.relative_to(tmp_path).parts[:2] for p in tmp_path.rglob("*")}
    assert written == set(), written


def test_the_filter_is_narrow():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sj.check(sj.function("x * 2", x=(2,)), x=np.ones(2))
        warnings.warn("`torch.jit.script` is deprecated (a user's own)", DeprecationWarning)
    assert [str(w.message) for w in caught] == ["`torch.jit.script` is deprecated (a user's own)"]


# found: under `-W error` (or pytest's `filterwarnings = error`), an overflow in symjac's own float32
# rounding-noise evaluation of exp(40) became an exception, reported as the implementation's error
SATURATING = [("sigmoid(W @ x)", {"W": (4, 3), "x": (3,)}, lambda W, x: torch.sigmoid(W @ x)),
              ("exp(x) / (1 + exp(x))", {"x": (3,)}, torch.sigmoid),
              ("log(1 + exp(x))", {"x": (2,)}, torch.nn.functional.softplus)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("text, shapes, impl", SATURATING, ids=[r[0] for r in SATURATING])
def test_saturated_points_raise_no_numpy_warning_in_check_or_verify(text, shapes, impl, dtype):
    import warnings

    spec = sj.function(text, **shapes)
    far = {name: np.full(shape, 40.0, dtype=dtype) for name, shape in shapes.items()}
    far_negative = {name: -v for name, v in far.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for point in (far, far_negative):
            assert sj.check(spec, **point).verdict in ("pass", "inconclusive")
            assert sj.verify(impl, spec, at=point).verdict == "pass"
        assert sj.verify(impl, spec, samples=30, seed=0, dtype=dtype).verdict == "pass"
        wrong = sj.verify(lambda *xs: impl(*xs) * (1 + 1e-3), spec, samples=30, seed=0, dtype=dtype)
        assert wrong.verdict == "fail"


def test_an_error_in_symjacs_own_work_is_not_blamed_on_the_implementation(monkeypatch):
    from symjac import _engine

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("symjac's own")

    monkeypatch.setattr(_engine._Check, "_noise", broken)
    with pytest.raises(ZeroDivisionError, match="symjac's own"):
        sj.verify(torch.sigmoid, sj.function("sigmoid(x)", x=(2,)), at={"x": np.ones(2)})
    # the implementation's own errors still are, with the point and the step
    monkeypatch.undo()

    def raising(x):
        raise ZeroDivisionError("impl's own")

    with pytest.raises(sj.ImplementationError, match="impl: raised ZeroDivisionError: impl's own"):
        sj.verify(raising, sj.function("sigmoid(x)", x=(2,)), at={"x": np.ones(2)})
