"""Trains a small drag predictor in its own process, for the kill -9 tests of robocl.drag.train:

    python tests/drag_train_runner.py DATA_ROOT CHECKPOINT PAUSE_S

(one torch thread; PAUSE_S after every epoch, once its checkpoint is written, so a test can kill it there)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from robocl.drag.dataset import load_split
from robocl.drag.model import DragModelConfig, DragPredictor, Level
from robocl.drag.train import TrainConfig, train_two_stage

MODEL = DragModelConfig(point_width=16, levels=(Level(256, 12, 0.1, 32, 0.1), Level(64, 12, 0.25, 64, 0.25),
                                                Level(16, 12, 0.6, 96, 0.6)), fp_width=64, out_width=48)
TRAIN = TrainConfig(stage1_epochs=3, stage2_epochs=3, batch_size=4, augment=True)


def main() -> None:
    data, checkpoint, pause = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(1)
    split = load_split(data, "train").subset(8)
    torch.manual_seed(0)
    train_two_stage(DragPredictor(MODEL), split, TRAIN, checkpoint=checkpoint, on_epoch=lambda *_: time.sleep(pause))


if __name__ == "__main__":
    main()
