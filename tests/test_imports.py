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


def test_import_loads_neither_sympy_nor_numpy():
    """The public names load on first use (PEP 562), so `import symjac` is a few milliseconds."""
    code = (
        "import sys, symjac\n"
        "print(','.join(m for m in ('sympy', 'numpy', 'mpmath') if m in sys.modules))\n"
        "symjac.function\n"
        "print(','.join(m for m in ('sympy', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["", "sympy,numpy"]


def test_lazy_names_are_the_defining_modules_objects():
    import importlib

    for name, module_name in symjac._LAZY.items():
        module = importlib.import_module(module_name, "symjac")
        expected = module if module_name == f".{name}" else getattr(module, name)
        assert getattr(symjac, name) is expected, name
    assert set(symjac._LAZY) | set(symjac._errors.__all__) == set(symjac.__all__)
    assert set(symjac.__all__) <= set(dir(symjac))


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        symjac.nope  # noqa: B018
    assert not hasattr(symjac, "_check_does_not_exist")


def test_sampled_check_and_verify_do_not_load_hypothesis():
    """`check(samples=...)` and `verify` draw with NumPy (`symjac._domain.Draws`): importing Hypothesis
    (about 0.1 s) is the cost of `symjac.strategies` alone."""
    code = (
        "import sys, symjac\n"
        "f = symjac.function('log(x) * y', x=(2,), y=())\n"
        "assert symjac.check(f, samples=5, seed=1).verdict == 'pass'\n"
        "assert symjac.verify(lambda x, y: x.log() * y, f, samples=3).verdict == 'pass'\n"
        "print('hypothesis' in sys.modules)\n"
        "import symjac.strategies\n"
        "print('hypothesis' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
