"""A saved model loaded in a fresh Python process: what the tests of saving and export share."""

import json
import subprocess
import sys
import textwrap

import numpy as np


def load_and_predict(tmp_path, model, raw, imports):
    """Save ``model``, load it in a fresh process that imports only ``imports``; its predictions and what it saw."""
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", **raw)
    script = textwrap.dedent(
        f"""
        import json, sys, numpy as np
        import {imports}
        model = keras.models.load_model({str(tmp_path / "model.keras")!r}, safe_mode=True)
        raw = dict(np.load({str(tmp_path / "inputs.npz")!r}, allow_pickle=False))
        out = model.predict(raw, verbose=0)
        np.savez({str(tmp_path / "out.npz")!r}, **out)
        print(json.dumps({{"class": type(model).__name__, "layers": [type(l).__name__ for l in model.layers],
                           "mtl_models": "mtl_models" in sys.modules}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "out.npz")), json.loads(result.stdout.strip().splitlines()[-1])
