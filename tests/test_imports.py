"""`import symjac` stays light, and the public surface is pinned."""

import subprocess
import sys

import symjac


def test_import_does_not_load_torch_or_hypothesis():
    code = (
        "import sys, symjac\n"
        "heavy = [m for m in ('torch', 'hypothesis', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names():
    assert symjac.__all__ == sorted(symjac.__all__)
    assert set(symjac.__all__) >= {"function", "check", "Function", "Jacobian", "Report", "SymjacError"}
    for name in symjac.__all__:
        assert getattr(symjac, name) is not None


def test_error_hierarchy_mixes_in_builtins():
    assert issubclass(symjac.InvalidArgumentError, (symjac.SymjacError, ValueError))
    assert issubclass(symjac.ShapeError, ValueError)
    assert issubclass(symjac.BackendNotAvailableError, ImportError)
    assert issubclass(symjac.JacobianMismatchError, AssertionError)
    assert issubclass(symjac.JacobianMismatchError, symjac.SymjacError)
