"""Acks of answered deliveries, a run of them in one frame.

Each ``basic.ack`` is a frame and a socket write of its own, and under load a write costs as
much as all the Python around a request. The requests answered in one turn of the event loop
(one answer of the store resumes many) are acked together at the end of that turn: the
run of answered tags just above the last one acked goes in one ``basic.ack`` with
``multiple``; an answered tag above one still being answered is acked on its own at once, so
a slow request never holds back the acks (nor, through the prefetch, the deliveries) of the
quick ones behind it. Nothing is acked before it is answered: ``multiple`` only ever covers
a run of answered tags (RabbitMQ numbers a channel's deliveries 1, 2, 3 …; a tag that never
comes only stops the runs, and the tags above it go one by one). A delivery given back to the
broker (``requeue``) is settled too: the runs go on past it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import AbstractChannel
from aiormq.exceptions import AMQPError, ChannelInvalidStateError

log = logging.getLogger("svc.amqp")


@dataclass
class _ChannelAcks:
    """One channel's tags: delivery tags count per channel, from 1."""

    acked_upto: int = 0  # every tag up to this one is acked
    answered: set[int] = field(default_factory=set)  # answered, not acked yet
    # above ``acked_upto``, settled already: acked alone, or given back
    settled_alone: set[int] = field(default_factory=set)
    flush: asyncio.Task[None] | None = None


class AnsweredAcks:
    def __init__(self) -> None:
        # a channel that closes (a reconnection opens another) takes its tags with it: the
        # broker redelivers whatever was not acked on it
        self._channels: WeakKeyDictionary[AbstractChannel, _ChannelAcks] = WeakKeyDictionary()

    def answered(self, message: AbstractIncomingMessage) -> None:
        """Ack ``message`` at the end of this turn of the event loop."""
        found = self._acks_of(message)
        if found is None:
            return
        channel, acks, tag = found
        acks.answered.add(tag)
        if acks.flush is None:
            acks.flush = asyncio.create_task(self._flush(channel, acks))

    async def requeue(self, message: AbstractIncomingMessage) -> None:
        """Give ``message`` back to the broker, to be delivered again, unless it is answered
        already (settling a tag twice closes the channel)."""
        found = self._acks_of(message)
        if found is None:
            return
        channel, acks, tag = found
        if tag <= acks.acked_upto or tag in acks.answered or tag in acks.settled_alone:
            return
        try:
            await channel.basic_nack(tag, requeue=True, wait=False)
        except (AMQPError, ChannelInvalidStateError) as error:  # the broker redelivers it
            log.info("nack not sent, the channel is closed: %r", error)
        acks.settled_alone.add(tag)

    def _acks_of(self, message: AbstractIncomingMessage
                 ) -> tuple[AbstractChannel, _ChannelAcks, int] | None:
        """Its channel, that channel's tags and its own; None when there is nothing to
        settle."""
        tag = message.delivery_tag
        if tag is None:  # consumed without acks
            return None
        try:
            channel = message.channel
        except ChannelInvalidStateError:  # closed: the broker redelivers what it had not acked
            log.info("delivery %s not settled, its channel is closed", tag)
            return None
        acks = self._channels.get(channel)
        if acks is None:
            acks = self._channels[channel] = _ChannelAcks()
        return channel, acks, tag

    async def drain(self) -> None:
        """Until every ack asked for is written."""
        while flushes := [acks.flush for acks in list(self._channels.values()) if acks.flush]:
            await asyncio.gather(*flushes, return_exceptions=True)

    @staticmethod
    async def _flush(channel: AbstractChannel, acks: _ChannelAcks) -> None:
        # started by the first answer of a turn, run after the others of that turn
        acks.flush = None
        run_end = None
        while True:
            tag = acks.acked_upto + 1
            if tag in acks.answered:
                acks.answered.remove(tag)
                run_end = tag
            elif tag in acks.settled_alone:
                acks.settled_alone.remove(tag)
            else:
                break
            acks.acked_upto = tag
        alone, acks.answered = acks.answered, set()
        acks.settled_alone |= alone
        try:
            if run_end is not None:  # never a tag acked alone: the broker closes the channel
                await channel.basic_ack(run_end, multiple=True, wait=False)
            for tag in alone:
                await channel.basic_ack(tag, wait=False)
        except (AMQPError, ChannelInvalidStateError) as error:  # the broker redelivers them
            log.info("acks not sent, the channel is closed: %r", error)
