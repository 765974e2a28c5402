"""symjac's property suite, runnable by users: `pytest --pyargs symjac.suite` or `symjac suite`.

- `test_catalog.py`: `symjac.check` (SymPy vs torch vs finite differences) on every catalog
  function (`symjac._catalog.CATALOG`), over points drawn from each function's own domain;
- `test_corpus.py`: `symjac.verify` on a corpus of wrong custom backward implementations (each must
  fail, at an entry where it is wrong) and their correct twins in float64 and float32 (never fail).

`--symjac-samples N` and `--symjac-seed S` (the pytest plugin's options) set the points per check and
the seed; the default is the small CI profile (`symjac._catalog.CI_SAMPLES`). Runs under
`pytest -n auto` (pytest-xdist): the cases are plain data, rebuilt in each worker.
"""
