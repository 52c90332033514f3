"""The one place that knows the AMQP wire: Kazoo's envelope, exchanges and queues, the RPC
server, the doc-change consumer, event publishing, and the client other apps can import."""

from . import wire_tolerance

wire_tolerance.install()
