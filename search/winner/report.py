"""``results/<name>/report.md`` and its plots (PNG, under ``results/<name>/report/``).

Learning curves of the winner's retraining runs per task; for the winner's exported run on
the test split: a confusion matrix and per-class F1 for each classification head, predicted
against true for each regression head, and a grid of sample predictions marked right or
wrong; the Pareto front of a multi-objective search; parameter importances from the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mtl_models.streaming import feed  # noqa: E402
from search.experiment.config import load_experiment  # noqa: E402
from search.experiment.metrics import OBJECTIVE, metric_key, split_key  # noqa: E402
from search.experiment.prepared import Prepared, prepare  # noqa: E402
from search.rundir.directory import RETRAIN_DIR, read_run_info  # noqa: E402
from search.rundir.leaderboard import pareto_ranks  # noqa: E402
from search.rundir.records import load_records  # noqa: E402
from search.winner.model_dir import load_model  # noqa: E402
from search.winner.retrain_table import TABLE_FILE, load_table  # noqa: E402
from search.winner.runs import RunResult  # noqa: E402

__all__ = ["write_report", "REPORT_DIR"]

REPORT_DIR = "report"
GRID = 16  # sample predictions shown


def write_report(run_dir: str | Path, progress: Callable[[str], None] = print) -> Path:
    """Write ``report.md`` and its PNGs for a run directory; returns the report's path.

    Before ``retrain`` the report holds what the search alone shows (Pareto front, importances).
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    prepared = prepare(load_experiment(run_dir / info.experiment_file))
    retrained = (run_dir / RETRAIN_DIR / TABLE_FILE).is_file()
    table = load_table(run_dir) if retrained else None
    figures = run_dir / REPORT_DIR
    figures.mkdir(exist_ok=True)
    sections = [f"# Report: {prepared.experiment.name}", ""]
    if retrained:
        sections += [(run_dir / RETRAIN_DIR / "retrain.md").read_text().replace("# Retrain:", "## Retrain:", 1), ""]
    else:
        sections += [f"The search only: run `mtl-search retrain {run_dir}` for test-split results and plots.", ""]
    winner = table.winner if table else None
    if winner:
        runs = [RunResult.read(run_dir / RETRAIN_DIR / r.name, r.job) for r in winner.runs]  # with their histories
        sections += _image(figures, "learning_curves.png", _learning_curves(runs, prepared),
                           f"Learning curves of {winner.config_id} (one line per seed; dashed: training)")
        exported = winner.best_run.name
        model = load_model(run_dir / RETRAIN_DIR / exported)
        test = prepared.splits.test
        predictions = model.predict(**feed(test, 256, targets=False), verbose=0)
        sections += [f"## The exported run on the test split: {exported}", ""]
        for task in (t for t in prepared.tasks if t.kind in ("classification", "regression")):  # pictured kinds
            truth, predicted = np.asarray(test.targets[task.name]), np.asarray(predictions[task.name])
            if task.kind == "classification":
                figure, f1 = _confusion(truth, predicted.argmax(-1), task.num_classes, task.name)
                sections += _image(figures, f"confusion_{task.name}.png", figure,
                                   f"{task.name}: confusion matrix and per-class F1 (macro F1 {np.mean(f1):.4f})")
            elif task.kind == "regression":
                sections += _image(figures, f"regression_{task.name}.png", _regression(truth, predicted, task.name),
                                   f"{task.name}: predicted against true")
        grid = _samples(test, predictions, prepared)
        if grid is not None:
            figure, wrong, total = grid
            sections += _image(figures, "samples.png", figure,
                               f"Test predictions, mistakes first ({wrong} of {total} test images have a task wrong; "
                               "green: every task right, red: a task wrong; + truth, x prediction)")
    records = load_records(run_dir)
    if prepared.objective.multi:
        sections += _image(figures, "pareto.png", _pareto(records, prepared), "Search: the Pareto front")
    figure, note = _importances(info.study_storage, prepared.experiment.name)
    sections += _image(figures, "importances.png", figure, "Search: parameter importances (Optuna's default evaluator)") \
        if figure is not None else ["## Parameter importances", "", note, ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(sections) + "\n")
    progress(f"Report: {path} ({len(list(figures.glob('*.png')))} plots in {figures}/)")
    return path


def _image(directory: Path, name: str, figure, caption: str) -> list[str]:
    figure.savefig(directory / name, dpi=90, bbox_inches="tight")
    plt.close(figure)
    return [f"### {caption}", "", f"![{caption}]({REPORT_DIR}/{name})", ""]


def _learning_curves(runs: list[RunResult], prepared: Prepared):
    tasks = prepared.tasks
    figure, axes = plt.subplots(1, len(tasks) + 1, figsize=(4 * (len(tasks) + 1), 3.2), squeeze=False)
    for run in runs:
        epochs = [row["epoch"] for row in run.history]
        objective = [row.get(split_key(OBJECTIVE, "val")) for row in run.history]
        line = axes[0][0].plot(epochs, objective, label=f"seed {run.job.seed}")[0]
        for ax, task in zip(axes[0][1:], tasks):
            key = metric_key(task.name, task.score_metric, "val")
            ax.plot(epochs, [row.get(key) for row in run.history], color=line.get_color())
            ax.plot(epochs, [row.get(metric_key(task.name, task.score_metric, "train")) for row in run.history],
                    color=line.get_color(), linestyle="--")
            ax.set_title(f"{task.name}_{task.score_metric}")
    axes[0][0].set_title("val objective")
    axes[0][0].legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _confusion(truth: np.ndarray, predicted: np.ndarray, classes: int, name: str):
    from sklearn.metrics import confusion_matrix, f1_score

    matrix = confusion_matrix(truth, predicted, labels=list(range(classes)))
    f1 = f1_score(truth, predicted, labels=list(range(classes)), average=None, zero_division=0)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    left.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if classes <= 12:
            left.text(j, i, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > matrix.max() / 2 else "black")
    left.set(xlabel="predicted", ylabel="true", title=f"{name}: confusion")
    right.bar(range(classes), f1, color="tab:blue")
    right.set(ylim=(0, 1.05), xlabel="class", ylabel="F1", title=f"{name}: per-class F1")
    figure.tight_layout()
    return figure, f1


def _regression(truth: np.ndarray, predicted: np.ndarray, name: str):
    dims = truth.shape[-1] if truth.ndim > 1 else 1
    truth, predicted = truth.reshape(len(truth), -1), predicted.reshape(len(predicted), -1)
    figure, axes = plt.subplots(1, dims, figsize=(3.6 * dims, 3.4), squeeze=False)
    for d, ax in enumerate(axes[0]):
        ax.scatter(truth[:, d], predicted[:, d], s=4, alpha=0.5)
        low, high = float(min(truth[:, d].min(), predicted[:, d].min())), float(max(truth[:, d].max(),
                                                                                    predicted[:, d].max()))
        ax.plot([low, high], [low, high], color="black", linewidth=0.8)
        mae = float(np.abs(truth[:, d] - predicted[:, d]).mean())
        ax.set(xlabel="true", ylabel="predicted", title=f"{name}[{d}]  MAE {mae:.4f}")
    figure.tight_layout()
    return figure


def _sample_verdict(test, predictions: dict, prepared: Prepared, n: int) -> tuple[bool, list[str], list]:
    """Whether every task is right for sample ``n``, a caption line per task, and points to mark."""
    lines, right, points = [], True, []
    for task in (t for t in prepared.tasks if t.kind in ("classification", "regression")):  # captioned kinds
        truth, guess = np.asarray(test.targets[task.name][n]), np.asarray(predictions[task.name][n])
        if task.kind == "classification":
            ok = int(guess.argmax()) == int(truth)
            lines.append(f"{task.name} {int(guess.argmax())}{'' if ok else f'≠{int(truth)}'}")
        else:  # regression
            error = float(np.linalg.norm(guess - truth))
            ok = error <= 0.05 if task.activation == "sigmoid" else True  # within 5 % of a [0, 1] target
            lines.append(f"{task.name} ±{error:.3f}")
            if task.output_dim == 2 and task.activation == "sigmoid":
                points.append((truth, guess))
        right &= ok
    return right, lines, points


def _samples(test, predictions: dict, prepared: Prepared):
    """A grid of test images with each task's prediction; the wrong ones first (up to half the grid)."""
    images = [i for i in prepared.inputs if len(i.shape) == 3]
    if not images:
        return None
    verdicts = [_sample_verdict(test, predictions, prepared, n) for n in range(len(test))]
    wrong = [n for n, v in enumerate(verdicts) if not v[0]][: GRID // 2]
    chosen = wrong + [n for n, v in enumerate(verdicts) if v[0]][: GRID - len(wrong)]
    # Only the shown rows are read: images on disk are decoded here, not all of the test split.
    image = dict(zip(chosen, np.asarray(test.inputs[images[0].name][np.asarray(chosen, dtype=np.intp)])))
    size = images[0].shape[0]
    figure, axes = plt.subplots(2, GRID // 2, figsize=(GRID, 4.6))
    for ax, n in zip(axes.flat, chosen + [None] * (GRID - len(chosen))):
        ax.set_xticks([])
        ax.set_yticks([])
        if n is None:
            ax.axis("off")
            continue
        shown = image[n] if image[n].shape[-1] == 3 else image[n][..., 0]
        low, high = float(shown.min()), float(shown.max())
        ax.imshow((shown - low) / (high - low or 1.0), cmap=None if shown.ndim == 3 else "gray")
        right, lines, points = verdicts[n]
        for truth, guess in points:
            ax.plot(truth[0] * size - 0.5, truth[1] * size - 0.5, "w+", markersize=8)
            ax.plot(guess[0] * size - 0.5, guess[1] * size - 0.5, "kx", markersize=6)
        ax.set_title("\n".join(lines), fontsize=7, color="green" if right else "red")
        for spine in ax.spines.values():
            spine.set(color="green" if right else "red", linewidth=2)
    figure.tight_layout()
    return figure, len([v for v in verdicts if not v[0]]), len(verdicts)


def _pareto(records, prepared: Prepared):
    terms = prepared.objective.terms[:2]
    keys = [t.key() for t in terms]  # as the trial records store them
    done = [r for r in records if r.objectives and all(r.objectives.get(k) is not None for k in keys)]
    values = [[r.objectives[k] for k in keys] for r in done]
    ranks = pareto_ranks(values, [t.mode for t in terms]) if values else []
    figure, ax = plt.subplots(figsize=(5, 4))
    for value, rank in zip(values, ranks):
        ax.scatter(*value, color="tab:red" if rank == 1 else "tab:gray", s=30 if rank == 1 else 12)
    ax.set(xlabel=f"{keys[0]} ({terms[0].mode})", ylabel=f"{keys[-1]} ({terms[-1].mode})",
           title="Pareto front (red) of the search's trials")
    ax.grid(alpha=0.3)
    return figure


def _importances(storage: str, study_name: str):
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        # Several objectives: rank by the first. The default evaluator (PED-ANOVA in Optuna 5) reads a
        # custom target as lower-is-better, so a maximised objective is negated.
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        target = None if len(study.directions) == 1 else (lambda t: sign * t.values[0])
        importances = optuna.importance.get_param_importances(study, target=target)
    except (ValueError, RuntimeError, KeyError) as exc:
        return None, f"Not computed: {exc}"
    if not importances:
        return None, "Not computed: no parameter varied over the finished trials."
    names = list(importances)[::-1]
    figure, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set(xlabel="importance (share of objective variance)", title=f"{study_name}: parameter importances")
    figure.tight_layout()
    return figure, ""

