"""Run ../shared/bench/trl_baseline.py unchanged, then save the model it trained.

trl_baseline.py prints its figures and discards the model; the quality comparison needs the
trained weights. This wrapper patches `SFTTrainer.train` to save `trainer.model` into
$TUNESMITH_BENCH_SAVE once training ends, then runs the baseline as a script with the same
arguments. The baseline's settings and timing are untouched (saving happens after its clock stops).

  TUNESMITH_BENCH_SAVE=out/ python bench/trl_saving.py TRL_BASELINE.py --model M --data D ...
"""

from __future__ import annotations

import os
import runpy
import sys

from trl import SFTTrainer

_train = SFTTrainer.train


def _train_and_save(self, *args, **kwargs):
    output = _train(self, *args, **kwargs)
    self.model.save_pretrained(os.environ["TUNESMITH_BENCH_SAVE"], safe_serialization=True)
    return output


if __name__ == "__main__":
    SFTTrainer.train = _train_and_save
    baseline, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(baseline, run_name="__main__")
