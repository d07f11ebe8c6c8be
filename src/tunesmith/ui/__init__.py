"""`tunesmith ui`: a local web dashboard over the run directories the other commands write."""

from tunesmith.ui.server import ui

__all__ = ["ui"]
