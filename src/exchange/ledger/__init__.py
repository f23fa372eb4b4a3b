"""The double-entry ledger (TigerBeetle's model, in SQL): the only place money lives."""
