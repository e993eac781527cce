"""The generated pages of the documentation site: the CLI and the JSON API.

Both come from the code itself, so the reference never drifts from it: the CLI
from the Typer application (:data:`xrd_bravais.cli.app`), the JSON API from the
FastAPI router's OpenAPI schema (:data:`xrd_bravais.web.api.router`).
``tools/mkdocs_hooks.py`` adds them to the site at build time; run this file to
print them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


# Typer carries its own copy of click: its objects are read by duck typing (a group
# lists commands; a parameter names its kind), never by class.


def _commands(group: Any, ctx: Any) -> list[tuple[str, Any, Any]]:
    """Every leaf command under a group: its full name, the command, its context."""
    out: list[tuple[str, Any, Any]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = type(ctx)(command, info_name=name, parent=ctx)
        if hasattr(command, "list_commands"):
            out += _commands(command, sub)
        else:
            out.append((sub.command_path, command, sub))
    return out


def _option_rows(command: Any, ctx: Any) -> list[str]:
    """One table row per argument and option: its names and type, and its help."""
    rows = []
    for param in command.get_params(ctx):
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            name = f"`{str(param.name).upper()}` (argument)"
            help_text = getattr(param, "help", "") or ""
        else:
            record = param.get_help_record(ctx)
            if record is None:
                continue
            name, help_text = f"`{record[0]}`", record[1]
        rows.append(f"| {_cell(name)} | {_cell(help_text)} |")
    return rows


def cli_reference() -> str:
    """Markdown of every ``xrd-bravais`` command: its help, usage and options."""
    from xrd_bravais.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("xrd-bravais", [], resilient_parsing=True)
    lines = [
        "# Command line",
        "",
        "Every `xrd-bravais` command, generated from the application itself "
        "(`xrd-bravais COMMAND --help` prints the same). Commands are listed in the "
        "order of a course: build, grade, baselines, kit, export, website.",
        "",
    ]
    for path, command, sub in _commands(root, ctx):
        lines += [f"## {path}", ""]
        doc = (command.help or "").strip()
        if doc:
            lines += [doc, ""]
        usage = " ".join(command.collect_usage_pieces(sub))
        lines += ["```", f"{path} {usage}".rstrip(), "```", ""]
        rows = _option_rows(command, sub)
        if rows:
            lines += ["| option | what it does |", "|---|---|", *rows, ""]
    return "\n".join(lines)


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map to {_schema_type(schema['additionalProperties'])}"
    return str(schema.get("type", "any"))


def api_reference() -> str:
    """Markdown of the website's JSON API, from the router's OpenAPI schema."""
    from fastapi import FastAPI

    from xrd_bravais.web import api

    app = FastAPI(title="xrd-bravais", docs_url=None, redoc_url=None)
    app.include_router(api.router)
    schema = app.openapi()
    lines = [
        "# JSON API",
        "",
        "The website (`xrd-bravais serve`) answers under `/api/v1`; a token goes in "
        "`Authorization: Bearer TOKEN`. Generated from the server's OpenAPI schema "
        "(`/openapi.json` on a running site gives the same).",
        "",
        "| method | path | what it does |",
        "|---|---|---|",
    ]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            lines.append(f"| {method.upper()} | `{path}` | {_cell(operation.get('summary', ''))} |")
    lines.append("")
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            lines += [f"## {method.upper()} {path}", ""]
            if operation.get("description"):
                lines += [operation["description"].strip(), ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required |", "|---|---|---|---|"]
                lines += [f"| `{p['name']}` | {p['in']} | {_schema_type(p.get('schema', {}))} | "
                          f"{'yes' if p.get('required') else 'no'} |" for p in params]  # fmt: skip
                lines.append("")
            ok = operation.get("responses", {}).get("200") or operation.get(
                "responses", {}).get("201", {})  # fmt: skip
            content = ok.get("content", {}).get("application/json", {}).get("schema")
            if content:
                lines += [f"Answers: {_schema_type(content)}.", ""]
    lines += ["## Schemas", ""]
    for name, model in schema.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        if model.get("description"):
            lines += [model["description"].strip(), ""]
        props = model.get("properties", {})
        if props:
            lines += ["| field | type | description |", "|---|---|---|"]
            lines += [f"| `{field}` | {_cell(_schema_type(spec))} | "
                      f"{_cell(spec.get('description', ''))} |"
                      for field, spec in props.items()]  # fmt: skip
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(cli_reference() if sys.argv[1:] != ["api"] else api_reference())
