"""Experiment protocols and their summaries."""
from .protocol import MODEL_NAMES, ProtocolConfig, ProtocolResult, run_protocol
from .summary import summarize

__all__ = ["MODEL_NAMES", "ProtocolConfig", "ProtocolResult", "run_protocol", "summarize"]
