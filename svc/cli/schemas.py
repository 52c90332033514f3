"""``svc schemas``: write the AMQP message schemas and the AsyncAPI document, and the HTTP API's
OpenAPI document, or check that the committed ones still match the models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("amqp_schemas")
OPENAPI_DIR = "http_schemas"


def register(app: typer.Typer) -> None:
    @app.command("schemas")
    def schemas(
        out: Annotated[Path, typer.Option("--out", help="the directory of the files")] = (
            DEFAULT_OUT
        ),
        openapi_out: Annotated[Path | None, typer.Option(
            "--openapi", help=f"the OpenAPI document [default: {OPENAPI_DIR}/openapi.json "
                              "beside --out]")] = None,
        check: Annotated[bool, typer.Option(
            "--check", help="write nothing; exit 1 listing the files that differ")] = False,
    ) -> None:
        """Generate the JSON Schema of every AMQP message, the AsyncAPI 3.0 document and the
        HTTP API's OpenAPI 3.1 document."""
        from ..amqp.schemas import drift, write
        from ..api import openapi

        # beside --out by default, so that writing elsewhere leaves the committed one alone
        openapi_path = openapi_out or out.parent / OPENAPI_DIR / openapi.OPENAPI_FILE
        if not check:
            written = write(out)
            openapi.write(openapi_path)
            typer.echo(f"wrote {len(written)} files to {out} and {openapi_path}")
            return
        drifted = [out / name for name in drift(out)]
        if openapi.drifted(openapi_path):
            drifted.append(openapi_path)
        for path in drifted:
            typer.echo(f"out of date: {path}", err=True)
        if drifted:
            typer.echo("run `svc schemas` to regenerate them", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} and {openapi_path} are up to date")
