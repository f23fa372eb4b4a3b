"""The deal (交易): the aggregate that walks the transaction chain, state by state."""
