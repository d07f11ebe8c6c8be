"""Run ../shared/bench/trl_baseline.py unchanged, then save the model it trained.

trl_baseline.py prints its figures and discards the model; the quality comparison needs the
trained weights. This wrapper patches `SFTTrainer.train` to save `trainer.model` into
$TUNESMITH_BENCH_SAVE once training ends, then runs the baseline as a script with the same
arguments. The baseline's settings and timing are untouched (saving happens after its clock stops).
With $TUNESMITH_BENCH_LIGER=1 the trainer's config also gets `use_liger_kernel=True` (TRL applies
Liger's kernels when training starts). The baseline's JSON line is printed again last, with the
process's peak GPU memory added on a GPU and `"liger"` saying whether Liger was on.

  TUNESMITH_BENCH_SAVE=out/ python bench/trl_saving.py TRL_BASELINE.py --model M --data D ...
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys

from bench_train import gpu_memory
from trl import SFTTrainer

_train = SFTTrainer.train
_init = SFTTrainer.__init__


def _train_and_save(self, *args, **kwargs):
    output = _train(self, *args, **kwargs)
    self.model.save_pretrained(os.environ["TUNESMITH_BENCH_SAVE"], safe_serialization=True)
    return output


def _init_with_liger(self, *args, **kwargs):
    kwargs["args"].use_liger_kernel = True  # the baseline passes its SFTConfig as args=
    _init(self, *args, **kwargs)


if __name__ == "__main__":
    liger = os.environ.get("TUNESMITH_BENCH_LIGER") == "1"
    SFTTrainer.train = _train_and_save
    if liger:
        SFTTrainer.__init__ = _init_with_liger
    baseline, sys.argv = sys.argv[1], sys.argv[1:]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(baseline, run_name="__main__")
    *before, figures = printed.getvalue().strip().splitlines()
    print("\n".join([*before, json.dumps({**json.loads(figures), **gpu_memory(), "liger": liger})]))
