"""mtl_models stands without the search stack."""

import subprocess
import sys


def test_importing_mtl_models_loads_no_search_stack():
    code = (
        "import sys, mtl_models, mtl_models.data, mtl_models.reference; "
        "print(sorted(m for m in ('ray', 'optuna', 'keras_tuner', 'search') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
