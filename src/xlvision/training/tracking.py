"""What goes to the dashboards beyond scalars: confusion matrices as images and tables."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def confusion_figure(matrix: list[list[int]], title: str):
    """A small annotated heatmap of one confusion matrix (rows: true, columns: predicted)."""
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i][j]:
                ax.text(j, i, matrix[i][j], ha="center", va="center", fontsize=6)
    ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n))
    fig.tight_layout()
    return fig


def log_confusion_matrices(loggers: list, confusion: dict[str, list[list[int]]]) -> None:
    """W&B: image and table; TensorBoard: figure; MLflow: figure and JSON artifact."""
    for name, matrix in confusion.items():
        key = f"{name}/confusion"
        for logger in loggers:
            kind = type(logger).__name__
            if kind == "WandbLogger":
                fig = confusion_figure(matrix, name)
                logger.log_image(key=key, images=[fig])
                rows = [
                    [t, p, matrix[t][p]] for t in range(len(matrix)) for p in range(len(matrix))
                ]
                logger.log_table(
                    key=f"{key}_table", columns=["true", "predicted", "count"], data=rows
                )
                plt.close(fig)
            elif kind == "TensorBoardLogger":
                logger.experiment.add_figure(key, confusion_figure(matrix, name), close=True)
            elif kind == "MLFlowLogger":
                fig = confusion_figure(matrix, name)
                slug = name.replace("/", "_")
                logger.experiment.log_figure(logger.run_id, fig, f"{slug}_confusion.png")
                logger.experiment.log_text(
                    logger.run_id, json.dumps(matrix), f"{slug}_confusion.json"
                )
                plt.close(fig)


def log_model_artifact(loggers: list, checkpoint: str | None, name: str) -> None:
    """The final checkpoint as a W&B model artifact; offline it is kept for `wandb sync`."""
    if not checkpoint:
        return
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            artifact = wandb.Artifact(name=f"{name}-{logger.experiment.id}", type="model")
            artifact.add_file(checkpoint)
            logger.experiment.log_artifact(artifact)
