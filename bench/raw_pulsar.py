"""The raw baseline of the Pulsar scenario: a plain pulsar-client consumer, in a process of its
own, that sends each trigger's email itself with aiosmtplib and acknowledges it after the send.

``python -m bench.raw_pulsar --url URL --topic T --smtp-port P --expect N [--concurrency C]``
prints ``READY`` once subscribed and ``DONE <sent> <errors>`` after ``expect`` messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiosmtplib
import pulsar
from pulsar.asyncio import Client

from bench.scenarios.common import raw_message


async def consume(args: argparse.Namespace) -> None:
    client = Client(args.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    consumer = await client.subscribe(
        args.topic,
        "bench-raw",
        consumer_type=pulsar.ConsumerType.Shared,
        receiver_queue_size=args.concurrency,
        initial_position=pulsar.InitialPosition.Earliest,
    )
    print("READY", flush=True)
    sent = errors = 0
    remaining = args.expect

    async def worker() -> None:
        nonlocal sent, errors, remaining
        while remaining > 0:
            remaining -= 1
            message = await consumer.receive()
            request = json.loads(message.data())
            subject = request["parameters"]["subject"]
            try:
                await aiosmtplib.send(
                    raw_message(subject.rsplit(None, 1)[-1]),
                    hostname="127.0.0.1",
                    port=args.smtp_port,
                    timeout=20,
                )
            except (aiosmtplib.SMTPException, OSError):
                errors += 1
                consumer.negative_acknowledge(message)
                remaining += 1
                continue
            sent += 1
            await consumer.acknowledge(message)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    print("DONE", sent, errors, flush=True)
    await consumer.close()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(consume(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
