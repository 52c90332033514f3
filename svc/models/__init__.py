"""The messages svc reads and writes, as pydantic models: one description of each, from which
the code builds what it sends and the AsyncAPI and OpenAPI documents are generated.

``requests`` (RPC requests), ``replies`` (what each request answers on success), ``events``
(what the outbox publishes), ``notices`` (KAZOO's doc-change notice), ``documents`` (the
shapes inside them: invoices, summaries, deliveries, audit entries) and ``fields`` (the
types they share).
"""
