"""The campaign: who is called, when and in what order (windows, queue, rules). Pure logic over the ledger."""
