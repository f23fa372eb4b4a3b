"""Transaction engine of a technology exchange: a deal state machine over a double-entry ledger."""

__version__ = "0.1.0"
