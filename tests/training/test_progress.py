"""The training bar counts optimizer steps out of max_steps on the endless shard stream."""

from __future__ import annotations

import pytest
from lightning.pytorch.callbacks import Callback

from aether.training.progress import StepProgressBar

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Snapshot(Callback):
    def __init__(self, bar: StepProgressBar) -> None:
        self.bar, self.seen = bar, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        task = self.bar.progress.tasks[self.bar.train_progress_bar_id]
        self.seen.append((task.description.strip(), task.completed, task.total))


def test_bar_shows_steps_out_of_max_steps(
    tmp_path, shards, module_factory, datamodule_factory, trainer_factory
) -> None:
    bar = StepProgressBar()
    snapshot = Snapshot(bar)  # runs after the bar: callbacks are called in order
    trainer = trainer_factory(tmp_path, 3, enable_progress_bar=True, callbacks=[bar, snapshot])
    trainer.fit(module_factory(), datamodule=datamodule_factory(shards))
    assert trainer.max_epochs == -1  # the endless epoch whose bar used to read "Epoch 0/-2"
    assert snapshot.seen == [("Step", 1, 3), ("Step", 2, 3), ("Step", 3, 3)]
