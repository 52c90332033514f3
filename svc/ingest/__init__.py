"""From a KAZOO notice to a document change: which notices count, completing them from the
document source, importing a running cluster."""
