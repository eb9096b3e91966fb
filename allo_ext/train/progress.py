"""Rich progress display for training: an epoch bar and a batch bar with running metrics."""
from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class EpochProgress:
    """Rich progress (epochs and batches with running loss/accuracy), or nothing."""

    def __init__(self, enabled: bool, epochs: int, done: int):
        self.enabled, self.epochs, self.done = enabled, epochs, done
        self.progress = None

    def __enter__(self) -> "EpochProgress":
        if self.enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self.progress.__enter__()
            self.epoch_task = self.progress.add_task(
                "epochs", total=self.epochs, completed=self.done, info=""
            )
            self.batch_task = self.progress.add_task("batches", total=1, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self.progress is not None:
            self.progress.reset(self.batch_task, total=steps, description=f"epoch {epoch}", info="")

    def advance(self, loss: float, acc: float, lr: float) -> None:
        if self.progress is not None:
            self.progress.update(
                self.batch_task, advance=1, info=f"loss {loss:.4f} acc {acc:.3f} lr {lr:.2e}"
            )

    def end_epoch(self, rec: dict[str, Any], stop: bool, patience: int | None) -> None:
        if self.progress is None:
            return
        self.progress.advance(self.epoch_task)
        line = (
            f"epoch {rec['epoch']}/{self.epochs} "
            f"loss {rec['train_loss']:.4f} acc {rec['train_acc']:.4f}"
        )
        if rec["val_loss"] is not None:
            line += (
                f" | val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f}"
                f" auc {rec['val_auc_macro']:.4f}"
            )
        self.progress.console.print(line + f" | lr {rec['lr']:.2e}", soft_wrap=True)
        if stop:
            self.progress.console.print(
                f"[yellow]early stopping after epoch {rec['epoch']}: validation loss has not "
                f"improved for the patience of {patience} epochs"
            )
