"""Where invoices go: one port (``abc``), three adapters (``local``, ``http``, ``kazoo``)."""
