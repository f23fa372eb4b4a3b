"""Parties: the legal persons that hold money and rights on the exchange."""
