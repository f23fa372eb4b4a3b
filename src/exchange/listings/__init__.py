"""Listings (挂牌): the public offer of a priced deal, its notice period and its intents."""
