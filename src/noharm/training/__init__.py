"""THE training loop of noharm (every model trains through :func:`fit_members`)."""
from .loop import TrainConfig, TrainReport, fit_members, keep_members, set_threads
from .optim import FlatParameters
from .surgery import project

__all__ = ["TrainConfig", "TrainReport", "fit_members", "keep_members", "FlatParameters", "set_threads", "project"]
