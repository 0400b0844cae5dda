"""End to end on a tiny search: retrain (2 seeds) with baselines, export, predict, evaluate, fine-tune, report."""

import copy
import io
import json
import subprocess
import sys
import textwrap
import zipfile

import matplotlib.image
import numpy as np
import pytest
import yaml

import search
from search.cli import main
from search.winner.statistics import delta_m
from search.winner.retraining import RetrainOptions

SEEDS = (1, 2)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_template):
    """A 3-trial search, the top 2 retrained with 2 seeds (+ single-task baselines), the winner exported."""
    tmp_path = tmp_path_factory.mktemp("pipeline")
    data = copy.deepcopy(tiny_template)
    data["budget"] = {"trials": 3, "max_epochs": 3}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    search.run(path, results_dir=tmp_path / "results", progress=lambda line: None)
    run_dir = tmp_path / "results" / "tiny"
    lines = []
    table = search.retrain(run_dir, RetrainOptions(top_k=2, seeds=SEEDS, epochs=4, patience=2, baselines=True),
                           progress=lines.append)
    out = tmp_path / "model"
    search.export(run_dir, out)
    return run_dir, table, out, lines


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_retrain_table_gives_mean_and_std_over_seeds_ranked_by_mean_objective(pipeline):
    run_dir, table, _, lines = pipeline
    summary = json.loads((run_dir / "retrain" / "retrain.json").read_text())
    assert len(summary["configs"]) == 2 and summary["seeds"] == list(SEEDS)
    means = [c["mean"]["test_objective"] for c in summary["configs"]]
    assert means == sorted(means, reverse=True)
    for config in summary["configs"]:
        assert sorted(r["job"]["seed"] for r in config["runs"]) == list(SEEDS)
        for key, mean in config["mean"].items():
            values = [r["test_metrics"][key] for r in config["runs"]]
            assert mean == pytest.approx(np.mean(values))
            assert config["std"][key] == pytest.approx(np.std(values, ddof=1))
    assert set(summary["configs"][0]["mean"]) >= {"test_objective", "test_shape_accuracy", "test_colour_accuracy",
                                                  "test_midpoint_mae"}
    assert summary["winner"]["config_id"] == summary["configs"][0]["config_id"]
    markdown = (run_dir / "retrain" / "retrain.md").read_text()
    assert "± " in markdown and f"Winner: **{summary['winner']['config_id']}**" in markdown
    assert sum("runs ·" in line for line in lines) == 4 + 6  # 2 configs × 2 seeds, then 3 tasks × 2 seeds


def test_each_run_keeps_its_best_checkpoint_by_the_objective_and_tensorboard_logs(pipeline):
    run_dir, _, _, _ = pipeline
    runs = [p for p in (run_dir / "retrain").iterdir() if (p / "result.json").exists()]
    assert len(runs) == 10
    for directory in runs:
        result = json.loads((directory / "result.json").read_text())
        assert result["status"] == "completed"
        assert (directory / "model.keras").is_file()
        assert list((directory / "tensorboard").rglob("events.out.tfevents.*"))
        history = [row["val_objective"] for row in result["history"]]
        assert result["best_epoch"] == int(np.argmax(history)) + 1
        # The checkpoint is the best epoch's model: its val objective is the best in the history.
        assert result["val_metrics"]["val_objective"] == pytest.approx(max(history), abs=1e-4)


def test_baselines_give_delta_m_by_libmtl_definition(pipeline):
    run_dir, table, _, _ = pipeline
    baselines = json.loads((run_dir / "retrain" / "retrain.json").read_text())["baselines"]
    assert set(baselines["tasks"]) == {"shape", "colour", "midpoint"}
    multi = {b["metric"]: b["multi_task_mean"] for b in baselines["tasks"].values()}
    single = {b["metric"]: b["mean"] for b in baselines["tasks"].values()}
    expected = 100 / 3 * sum((1 if k != "test_midpoint_mae" else -1) * (multi[k] - single[k]) / single[k]
                             for k in single)
    assert baselines["delta_m_percent"] == pytest.approx(expected)
    assert delta_m({"a_accuracy": 0.9, "b_mae": 0.1}, {"a_accuracy": 0.8, "b_mae": 0.2}) == pytest.approx(
        100 / 2 * (0.1 / 0.8 + 0.1 / 0.2))


def test_export_writes_the_model_savedmodel_and_card(pipeline):
    run_dir, _, out, _ = pipeline
    names = {p.name for p in out.iterdir()}
    assert {"model.keras", "serving", "model_card.json", "model_card.md", "README.md", "experiment.yaml"} <= names
    card = json.loads((out / "model_card.json").read_text())
    summary = json.loads((run_dir / "retrain" / "retrain.json").read_text())
    winner = summary["configs"][0]
    assert card["config_id"] == winner["config_id"] and card["seeds"] == list(SEEDS)
    assert card["test_metrics"]["test_shape_accuracy"]["mean"] == pytest.approx(winner["mean"]["test_shape_accuracy"])
    assert card["test_metrics"]["test_midpoint_mae"]["std"] == pytest.approx(winner["std"]["test_midpoint_mae"])
    assert card["delta_m_percent"] == pytest.approx(summary["baselines"]["delta_m_percent"])
    assert card["software"]["tensorflow"] and card["spec"]["heads"]
    assert card["inputs"] == [{"name": "image", "shape": [16, 16, 3], "pixel_max": 1.0}]  # shapes: images in [0, 1]
    assert "## Test metrics" in (out / "model_card.md").read_text()


def test_exported_files_load_without_the_package_and_predict_as_the_trained_model(pipeline, tmp_path):
    run_dir, _, out, _ = pipeline
    images = np.random.default_rng(0).uniform(0, 1, (20, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    # A process that never imports mtl_models (issue 13, item 8): Keras' own layers only.
    printed = _python(f"""
        import json, sys, numpy as np, keras, tensorflow as tf
        x = np.load({str(tmp_path / 'x.npy')!r})
        a = keras.models.load_model({str(out / 'model.keras')!r}, safe_mode=True).predict({{"image": x}}, verbose=0)
        served = tf.saved_model.load({str(next((out / 'serving').glob('*/1')))!r})  # it owns the variables
        b = served.serve({{"image": tf.constant(x)}})
        np.savez({str(tmp_path / 'a.npz')!r}, **a)
        print(json.dumps({{"imported": sorted(m for m in sys.modules if m.split(".")[0] in ("mtl_models", "search")),
                           "savedmodel": {{k: float(np.abs(a[k] - b[k].numpy()).max()) for k in a}}}}))
    """)
    seen = json.loads(printed.strip().splitlines()[-1])
    assert seen["imported"] == []
    assert set(seen["savedmodel"]) == {"shape", "colour", "midpoint"}
    assert max(seen["savedmodel"].values()) <= 1e-5
    # The same predictions as the retrain run's own model, the one that was trained and judged.
    card = json.loads((out / "model_card.json").read_text())
    import keras

    trained = keras.models.load_model(run_dir / "retrain" / card["exported_model"]["run"] / "model.keras",
                                      safe_mode=True)
    assert type(trained).__name__ == "MultiTaskModel"
    expected = trained.predict({"image": images}, verbose=0)
    with np.load(tmp_path / "a.npz") as got:
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], atol=1e-6)


def test_predict_writes_per_task_predictions(pipeline, tmp_path, capsys):
    _, _, out, _ = pipeline
    images = np.random.default_rng(1).uniform(0, 1, (7, 16, 16, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", X=images)
    assert main(["predict", str(out), str(tmp_path / "in.npz"), "--out", str(tmp_path / "p.npz")]) == 0
    with np.load(tmp_path / "p.npz") as p:
        assert p["shape_class"].shape == (7,) and p["shape_class"].max() < 4
        assert p["shape_probabilities"].shape == (7, 4)
        np.testing.assert_allclose(p["shape_probabilities"].sum(-1), 1.0, atol=1e-5)
        assert p["colour_probability"].shape == (7,)
        assert p["midpoint"].shape == (7, 2) and ((p["midpoint"] >= 0) & (p["midpoint"] <= 1)).all()


def test_evaluate_reproduces_the_card_in_a_fresh_process(pipeline):
    _, _, out, _ = pipeline
    printed = _python(f"""
        import sys
        from search.winner.using import evaluate
        print(evaluate({str(out)!r}).to_json(orient="records"))
        assert "ray" not in sys.modules, "evaluating an exported model loaded Ray"
    """)
    rows = json.loads(printed.strip().splitlines()[-1])
    assert {r["metric"] for r in rows} >= {"test_shape_accuracy", "test_colour_accuracy", "test_midpoint_mae",
                                          "test_objective"}
    for row in rows:
        assert row["now"] == pytest.approx(row["card"], abs=1e-5), row


def test_finetune_trains_only_the_chosen_head(pipeline, tmp_path):
    _, _, out, _ = pipeline
    target = tmp_path / "tuned"
    assert main(["finetune", str(out), "--task", "midpoint", "--epochs", "3", "--learning-rate", "0.003",
                 "--out", str(target)]) == 0
    card = json.loads((target / "model_card.json").read_text())
    finetuned = card["finetuned"]
    assert finetuned["task"] == "midpoint" and finetuned["freeze"] == "backbone"
    # The tiny model is far from converged: three epochs on its midpoint head lower the val MAE.
    assert finetuned["improved"] and finetuned["val_after"] < finetuned["val_before"]
    import keras

    before = keras.models.load_model(out / "model.keras", safe_mode=True)
    after = keras.models.load_model(target / "model.keras", safe_mode=True)
    changed = {layer.name for layer in before.layers if layer.weights and not all(
        np.array_equal(a, b) for a, b in zip(layer.get_weights(), after.get_layer(layer.name).get_weights()))}
    assert changed and all(name.startswith("midpoint") for name in changed), changed


def test_report_has_every_plot_and_none_is_blank(pipeline):
    run_dir, _, _, _ = pipeline
    report = (run_dir / "report.md").read_text()
    expected = {"learning_curves.png", "confusion_shape.png", "confusion_colour.png", "regression_midpoint.png",
                "samples.png", "importances.png"}
    assert {p.name for p in (run_dir / "report").glob("*.png")} >= expected
    for name in expected:
        assert f"(report/{name})" in report
        pixels = matplotlib.image.imread(run_dir / "report" / name)[..., :3]
        assert pixels.std() > 0.02 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, name


# Bad input: exit 2, a clear message, nothing written or overwritten ------------------------------------------
def test_export_refuses_an_existing_directory_and_keeps_it(pipeline, capsys):
    run_dir, _, out, _ = pipeline
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("argv, message", [
    (["finetune", "{out}", "--task", "position", "--out", "{tmp}/x"], "must name a task of the model"),
    (["finetune", "{out}", "--task", "shape", "--freeze", "heads", "--out", "{tmp}/x"], "--freeze"),
    (["predict", "{out}", "{tmp}/wrong.npz", "--out", "{tmp}/p.npz"], "must have shape (N, 16, 16, 3)"),
    (["predict", "{out}", "{tmp}/two.npz", "--out", "{tmp}/p.npz"], "`inputs[image]`: is missing"),
    (["predict", "{out}", "{tmp}/pickled.npz", "--out", "{tmp}/p.npz"], "without pickle"),
    (["predict", "{out}", "{tmp}/liar.npz", "--out", "{tmp}/p.npz"], "its header claims shape (1099511627776, 16, 16, 3)"),
    (["predict", "{out}", "{tmp}/ok.npz", "--out", "{tmp}", "--force"], "this is a directory"),
    (["evaluate", "{tmp}"], "is not an exported model directory"),
    (["retrain", "{run}", "--by", "nosuchtask"], "--by"),
    (["retrain", "{run}", "--seeds", "1", "1"], "must not repeat a seed"),
])
def test_bad_model_commands_exit_2_and_write_nothing(pipeline, tmp_path, capsys, argv, message):
    run_dir, _, out, _ = pipeline
    np.savez(tmp_path / "wrong.npz", image=np.zeros((3, 8, 8, 3), np.float32))
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 16, 16, 3)), b=np.zeros(3))
    np.savez(tmp_path / "pickled.npz", image=np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "ok.npz", image=np.zeros((3, 16, 16, 3), np.float32), unused=np.zeros(3))
    _lie_about_shape(tmp_path / "ok.npz", tmp_path / "liar.npz", "image", (1 << 40, 16, 16, 3))
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(out=out, tmp=tmp_path, run=run_dir) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _lie_about_shape(source, target, name, shape):
    """Copy NPZ ``source`` to ``target`` with array ``name``'s header claiming ``shape`` (its data unchanged)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == f"{name}.npy":
                f = io.BytesIO(data)
                np.lib.format.read_magic(f)
                _, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"shape": shape, "fortran_order": fortran,
                                                              "descr": np.lib.format.dtype_to_descr(dtype)})
                data = header.getvalue() + data[f.tell():]
            new.writestr(info, data)


def test_retrain_without_finished_trials_exits_2(tmp_path, tiny, write_experiment, capsys):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    write_experiment(tiny, name="empty/experiment.yaml")
    (run_dir / "run.json").write_text(json.dumps({
        "name": "tiny", "experiment_file": "experiment.yaml", "storage_path": ".",
        "study_storage": "sqlite:///study.db", "address": None, "created": 0.0}))
    assert main(["retrain", str(run_dir)]) == 2
    assert "holds no finished trials" in capsys.readouterr().err
    assert not (run_dir / "retrain").exists()
