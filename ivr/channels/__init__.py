"""Contact channels beside the call: SMS (SMPP), e-mail (SMTP), letters (PDF for the post), and the rules that
choose which channel each debtor gets (ivr.channels.rules)."""
