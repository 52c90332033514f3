"""The ``svc`` command line."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from ..jsonio import dumps
from ..rating import PlanInvalid, QuoteInvalid, lint_plan, parse_quote, quote_json, rate_quote
from .inputs import fail, fail_violations, read_json
from .render import print_invoices

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="svc: services and billing for a Kazoo-style telecom cluster.")
plans_app = typer.Typer(no_args_is_help=True, help="Service-plan documents.")
app.add_typer(plans_app, name="plans")


class OutputFormat(enum.StrEnum):
    json = "json"
    table = "table"


def _print_json(value: object) -> None:
    typer.echo(dumps(value, indent=True).decode())


@app.command()
def quote(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="a quote document (SPEC §4)")],
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
        print_invoices(invoices)
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
