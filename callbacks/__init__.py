"""Lightning callbacks and loggers that stream metrics and signals into the run store.

The public entry point for anyone's Lightning code: ``from phenomon.callbacks import RunStoreLogger``.
"""

from phenomon.callbacks.stream import RunStoreLogger

__all__ = ["RunStoreLogger"]
