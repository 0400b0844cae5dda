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


def test_specs_and_data_load_without_keras_and_the_keras_parts_come_on_first_use():
    code = (
        "import sys, mtl_models, mtl_models.data, mtl_models.reference\n"
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n"
        "build = mtl_models.build_model\n"
        "print(build.__module__, 'keras' in sys.modules, sorted(set(mtl_models.__all__) - set(dir(mtl_models))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-2:] == ["[]", "mtl_models.factory True []"]
