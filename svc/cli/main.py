"""The ``svc`` command line."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from .. import __version__
from ..jsonio import dumps
from ..rating import PlanInvalid, QuoteInvalid, lint_plan, parse_quote, quote_json, rate_quote
from .importing import register as register_import
from .inputs import fail, fail_violations, read_json
from .render import print_invoices
from .schemas import register as register_schemas

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="svc: services and billing for a Kazoo-style telecom cluster.")
plans_app = typer.Typer(no_args_is_help=True, help="Service-plan documents.")
app.add_typer(plans_app, name="plans")
register_schemas(app)
register_import(app)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"svc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(  # noqa: ARG001 - read by its callback
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """svc: services and billing for a Kazoo-style telecom cluster."""


class OutputFormat(enum.StrEnum):
    json = "json"
    table = "table"


def _print_json(value: object) -> None:
    typer.echo(dumps(value, indent=True).decode())


@app.command()
def quote(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="a quote document")],
    output: Annotated[OutputFormat, typer.Option("--format", help="json or table")] = (
        OutputFormat.json
    ),
) -> None:
    """Rate a quote document offline and print its invoices."""
    try:
        invoices = rate_quote(parse_quote(read_json(source)))
    except QuoteInvalid as error:
        fail_violations("invalid quote document", error.violations)
    if output is OutputFormat.table:
        print_invoices(quote_json(invoices)["invoices"])
    else:
        _print_json(quote_json(invoices))


@app.command()
def quantities(
    source: Annotated[str, typer.Argument(
        metavar="FILE|-", help="a JSON array of one account's KAZOO documents")],
) -> None:
    """Count what one account's documents bill for (its quantities object)."""
    from ..quantities import QuantityInputError, account_quantities
    from ..settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))
    docs = read_json(source)
    if not isinstance(docs, list):
        fail("$: must be a JSON array of documents")
    try:
        counts, warnings = account_quantities(docs, settings.number_classifiers)
    except QuantityInputError as error:
        fail(f"{error.path}: {error.rule}")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    _print_json(counts)


@app.command()
def serve() -> None:
    """Run the service: AMQP RPC, the doc-change consumer (SVC_* settings)."""
    import asyncio
    import signal

    from ..app import serve as run_service
    from ..ops import configure_logging
    from ..settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_service(settings, stop)

    try:
        asyncio.run(main())
    except SettingsError as error:  # found while starting: the HTTP port taken
        fail(str(error))


@app.command()
def call(
    category: Annotated[str, typer.Argument(help="request category, e.g. summary, plans")],
    event_name: Annotated[str, typer.Argument(help="e.g. summary or summary_req")],
    account: Annotated[str | None, typer.Option("--account", help="Account-ID")] = None,
    json_fields: Annotated[str | None, typer.Option("--json", help="more request fields")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the reply")] = 10,
) -> None:
    """Send one request to a running svc and print the reply (exit 0 ok, 1 error reply,
    2 bad input or timeout)."""
    import asyncio

    from ..amqp.client import ServicesClient
    from ..jsonio import loads
    from ..settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))
    try:
        fields = loads(json_fields) if json_fields else {}
    except ValueError as error:
        fail(f"--json is not valid JSON: {error}")
    if not isinstance(fields, dict):
        fail("--json must be a JSON object")
    if account:
        fields["Account-ID"] = account

    async def run() -> dict:
        async with ServicesClient(settings.amqp_url) as client:
            return await client.call(event_name, fields, category, timeout)

    try:
        reply = asyncio.run(run())
    except TimeoutError:
        fail(f"no reply within {timeout} s")
    except OSError as error:
        fail(f"cannot reach the broker at SVC_AMQP_URL: {error}")
    _print_json(reply)
    if reply.get("Event-Category") == "error" or reply.get("Status") == "error":
        raise typer.Exit(1)


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="seconds to wait for counts and sync")] = 120,
    master: Annotated[str | None, typer.Option(
        help="the master account's id (one an API token names); default: a new one")] = None,
) -> None:
    """Run the seed's story against a running svc, print the result as tables, then the ids
    the HTTP API's curl commands need."""
    import asyncio

    from ..amqp.client import ServicesClient
    from ..demo import accounts_text, run_demo
    from ..settings import SettingsError, load_settings
    from .render import console

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))

    async def run():
        async with ServicesClient(settings.amqp_url) as client:
            return await run_demo(client, timeout, master)

    try:
        accounts, summaries = asyncio.run(run())
    except TimeoutError as error:  # a request unanswered carries no message of its own
        fail(f"{str(error) or 'svc did not answer'}: is `svc serve` running against SVC_AMQP_URL?")
    except OSError as error:
        fail(f"cannot reach the broker at SVC_AMQP_URL: {error}")
    out = console()
    for summary in summaries:
        out.rule(f"account {summary['account_id']} (reseller {summary['reseller_id']}), "
                 f"status {summary['status']}")
        out.print_json(dumps(summary["quantities"]["account"]).decode())
        print_invoices(summary["invoices"])
    typer.echo(accounts_text(accounts, settings.http_port))


@plans_app.command("lint")
def plans_lint(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="a service-plan document")],
) -> None:
    """Validate a plan; errors exit 2, warnings about KAZOO's footguns go to stderr."""
    try:
        warnings = lint_plan(read_json(source))
    except PlanInvalid as error:
        fail_violations("invalid plan", error.violations)
    for warning in warnings:
        typer.echo(f"warning: {warning.path}: {warning.rule}", err=True)
    typer.echo(f"ok: {len(warnings)} warning(s)")
