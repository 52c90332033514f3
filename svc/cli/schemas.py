"""``svc schemas``: write the AMQP message schemas and the AsyncAPI document, or check that the
committed ones still match the models (SPEC §1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("amqp_schemas")


def register(app: typer.Typer) -> None:
    @app.command("schemas")
    def schemas(
        out: Annotated[Path, typer.Option("--out", help="the directory of the files")] = (
            DEFAULT_OUT
        ),
        check: Annotated[bool, typer.Option(
            "--check", help="write nothing; exit 1 listing the files that differ")] = False,
    ) -> None:
        """Generate the JSON Schema of every AMQP message and the AsyncAPI 3.0 document."""
        from ..amqp.schemas import drift, write

        if not check:
            written = write(out)
            typer.echo(f"wrote {len(written)} files to {out}")
            return
        drifted = drift(out)
        for name in drifted:
            typer.echo(f"out of date: {out / name}", err=True)
        if drifted:
            typer.echo("run `svc schemas` to regenerate them", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
