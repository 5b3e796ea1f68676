"""``convsim schema NAME``: print a JSON Schema."""

from __future__ import annotations

import json

import click

from ..schemas import json_schema, schema_names


@click.command("schema")
@click.argument("name", type=click.Choice(schema_names(), case_sensitive=False))
def schema_cmd(name: str) -> None:
    """Print the JSON Schema of a convsim file format.

    NAME is one of the formats convsim reads and writes, e.g. ``trace`` for canonical
    conversations or ``case`` for evaluation cases. Point your editor's YAML/JSON
    validation at the output.
    """
    click.echo(json.dumps(json_schema(name.lower()), indent=2))
