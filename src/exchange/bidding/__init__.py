"""Bidding (竞价): auctions and tenders on a listing, from the first bid to the award."""
