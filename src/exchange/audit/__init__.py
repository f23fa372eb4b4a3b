"""The audit trail: who did what, to what, when, and how it ended. Append-only."""
