"""The periodic maintenance of the seed: claim dirty accounts, rate them, hand the invoices
to their bookkeepers, record the outcome, dirty the resellers."""
