"""Settlement (结算): the escrow's payout of a deal, with the exchange fee and inventor rewards."""
