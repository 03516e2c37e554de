"""The debtor ledger: accounts, numbers, balances, payments and what the dialer wrote about them."""
