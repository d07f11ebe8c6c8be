"""The train stage: prepared data + a base model -> fine-tuned weights in the run directory.

`train(config)` is the entry point (what `tunesmith train CONFIG` calls); `fit` is the loop
itself, taking plain values.
"""

from tunesmith.callable_package import make_callable
from tunesmith.train.api import TrainResult, train
from tunesmith.train.loop import FitResult, fit

__all__ = ["FitResult", "TrainResult", "fit", "train"]

make_callable(__name__, "train")  # tunesmith.train(...) calls train(...)
