"""`surveyor credential …` (connectors' credentials, through the API) and `surveyor secrets …`
(the key that encrypts their secrets, on the console's own machine).

Secrets are never command-line arguments (other users of the machine can read those): they
are prompted for with hidden input, or read from standard input with `--secrets-stdin`, and
never printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from surveyor.cli.client import EXIT_REFUSED, EXIT_USAGE, CliError
from surveyor.cli.command import Api, api_command, command_group
from surveyor.cli.listing import add_delete, add_list, add_show
from surveyor.cli.render import (
    err,
    format_time,
    out,
    print_answer,
    print_json,
    reports_errors,
    shown,
)
from surveyor.core.credentials import (
    CredentialKind,
    field_specs,
    required_fields,
    secret_fields,
)

credential_app = command_group(
    "Credentials connectors sign in with (admins only); secrets are write-only."
)
secrets_app = command_group(
    "The key that encrypts credentials' secrets (run where the console runs)."
)

CREDENTIAL_ID_HELP = "The credential's id (see `list`)."
CredentialId = Annotated[int, typer.Argument(min=1, help=CREDENTIAL_ID_HELP)]
SecretsStdin = Annotated[
    bool,
    typer.Option(
        "--secrets-stdin",
        help="Read the secrets from standard input, one line each, in --secret order.",
    ),
]


def _pairs(given: Iterable[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"{option} takes NAME=VALUE, got {item!r}", EXIT_USAGE)
        pairs[name.strip()] = value
    return pairs


def _secret_names(kind: CredentialKind, plain: Mapping[str, str], asked: list[str]) -> list[str]:
    """The secret fields to read: those asked for, else those the kind needs."""
    secret = secret_fields(kind)
    for name in asked:
        if name not in secret:
            raise CliError(
                f"{kind.value} credentials have no secret field {name!r}; "
                f"their secret fields are {', '.join(sorted(secret)) or 'none'}",
                EXIT_USAGE,
            )
    if asked:
        return asked
    needed = required_fields(kind, plain) & secret
    return [spec.name for spec in field_specs(kind) if spec.name in needed]


def _refuse_plain_secrets(kind: CredentialKind, plain: Mapping[str, str]) -> None:
    """Secrets are never given on the command line: a --field naming one is refused."""
    overlap = sorted(set(plain) & secret_fields(kind))
    if overlap:
        raise CliError(
            f"{overlap[0]} is a secret: give it with --secret {overlap[0]}, never on the "
            "command line",
            EXIT_USAGE,
        )


def read_secrets(names: list[str], from_stdin: bool) -> dict[str, str]:
    """Each named secret from a hidden prompt, or from a line of standard input each."""
    values = {}
    for name in names:
        if from_stdin:
            value = sys.stdin.readline().rstrip("\r\n")
        else:
            value = typer.prompt(f"{name} (hidden)", hide_input=True, err=True)
        if not value:
            raise CliError(
                f"no value given for {name}"
                + (" (one line of standard input per secret)" if from_stdin else ""),
                EXIT_USAGE,
            )
        values[name] = value
    return values


def credentials_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Kind")
    table.add_column("Sites")
    table.add_column("Fields", overflow="fold")
    table.add_column("Last used")
    for item in items:
        fields = []
        for name, value in item["fields"].items():
            if isinstance(value, dict):
                fields.append(f"{name}: {'set' if value.get('set') else 'not set'}")
            else:
                fields.append(f"{name}={value}")
        table.add_row(
            Text(str(item["id"])),
            shown(item["name"]),
            Text(item["kind"]),
            Text(", ".join(map(str, item["site_ids"])) or "all"),
            shown("; ".join(fields)),
            Text(format_time(item["last_used_at"]) if item.get("last_used_at") else "never"),
        )
    return table


@api_command(credential_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="A name for it, unique in the organization.")],
    kind: Annotated[CredentialKind, typer.Option("--kind", help="ldap, snmp or dns.")],
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="A plain field as NAME=VALUE (repeatable): bind_dn=cn=svc,dc=lab, "
            "version=2c, user=…, auth_protocol=SHA, tsig_name=…",
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="A secret field to set (repeatable), asked for with hidden input; default: "
            "the ones the kind needs (password, community, auth_key and priv_key).",
        ),
    ] = None,
    secrets_stdin: SecretsStdin = False,
    site: Annotated[
        list[int] | None,
        typer.Option("--site", min=1, help="A site that may use it (repeatable; none: all)."),
    ] = None,
    *,
    api: Api,
) -> None:
    """Create a credential; its secrets are encrypted by the console and never shown again."""
    plain = _pairs(field or [], "--field")
    names = _secret_names(kind, plain, list(secret or []))
    _refuse_plain_secrets(kind, plain)
    body = {
        "name": name,
        "kind": kind.value,
        "site_ids": list(site or []),
        "fields": {**plain, **read_secrets(names, secrets_stdin)},
    }
    with api.connect() as client:
        created = client.post("/credentials", body)
    print_answer(
        created,
        api.as_json,
        f"Created credential {created['id']} ({created['kind']}): {created['name']}",
    )


add_list(
    credential_app,
    "/credentials",
    credentials_table,
    help="Show the organization's credentials (secrets only as set or not).",
    empty="There are no credentials; create one with `surveyor credential create NAME --kind K`.",
)
add_show(
    credential_app,
    "/credentials",
    credentials_table,
    help="Show one credential (secrets only as set or not).",
)


@api_command(credential_app, "edit")
def edit(
    credential_id: CredentialId,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="Set a plain field, as NAME=VALUE (repeatable)."),
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option("--clear", help="Clear a field, plain or secret (repeatable)."),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret", help="Replace a secret field (repeatable), asked for with hidden input."
        ),
    ] = None,
    secrets_stdin: SecretsStdin = False,
    site: Annotated[
        list[int] | None,
        typer.Option("--site", min=1, help="The sites that may use it (replaces the list)."),
    ] = None,
    all_sites: Annotated[bool, typer.Option("--all-sites", help="Let every site use it.")] = False,
    *,
    api: Api,
) -> None:
    """Change a credential: what is not named stays as it is, secrets included."""
    with api.connect() as client:
        current = client.get(f"/credentials/{credential_id}")
        kind = CredentialKind(current["kind"])
        plain = _pairs(field or [], "--field")
        _refuse_plain_secrets(kind, plain)
        names = _secret_names(kind, plain, list(secret or [])) if secret else []
        fields: dict[str, str | None] = {**plain, **dict.fromkeys(clear or [])}
        fields.update(read_secrets(names, secrets_stdin))
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if fields:
            body["fields"] = fields
        if all_sites or site:
            body["site_ids"] = [] if all_sites else list(site or [])
        if not body:
            raise CliError(
                "nothing to change: give --name, --field, --clear, --secret or --site",
                EXIT_USAGE,
            )
        changed = client.request("PATCH", f"/credentials/{credential_id}", json=body)
    print_answer(changed, api.as_json, f"Changed credential {changed['id']}: {changed['name']}")


@api_command(credential_app, "verify")
def verify(
    credential_id: CredentialId,
    server: Annotated[str, typer.Option("--server", help="host[:port] to try it against.")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="A connector option as NAME=VALUE (repeatable)."),
    ] = None,
    options_json: Annotated[
        str | None,
        typer.Option("--options-json", help="The connector's options as a JSON object."),
    ] = None,
    *,
    api: Api,
) -> None:
    """Try a credential against a server and say, in words, what worked or what did not
    (exit 1 when it did not)."""
    options: dict[str, Any] = {}
    if options_json:
        try:
            loaded = json.loads(options_json)
        except json.JSONDecodeError as exc:
            raise CliError(f"--options-json is not JSON: {exc.msg}", EXIT_USAGE) from exc
        if not isinstance(loaded, dict):
            raise CliError("--options-json is a JSON object", EXIT_USAGE)
        options.update(loaded)
    options.update(_pairs(option or [], "--option"))
    with api.connect() as client:
        answer = client.post(
            f"/credentials/{credential_id}/verify", {"server": server, "options": options}
        )
    if api.as_json:
        print_json(answer)
    elif answer["ok"]:
        out.print(shown(answer["message"]))
    if not answer["ok"]:
        if not api.as_json:
            err.print(shown(f"Verify failed: {answer['message']}", style="bold red"))
        raise typer.Exit(EXIT_REFUSED)


add_delete(
    credential_app,
    "delete",
    "/credentials",
    argument="credential_id",
    argument_help=CREDENTIAL_ID_HELP,
    help="Delete a credential and its secrets.",
    said="Deleted credential {id}.",
)


# The key


@secrets_app.command("new-key")
def new_key() -> None:
    """Print a new random key (base64) for SURVEYOR_SECRET_KEY or a key file."""
    from surveyor.security.secretbox import encode_key
    from surveyor.security.secretbox import new_key as make_key

    typer.echo(encode_key(make_key()))


@secrets_app.command("rotate")
@reports_errors
def rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="Take the new key from this file, or write a new one into it (0600) if it "
            "does not exist. Default: a new key replaces the current key file.",
        ),
    ] = None,
) -> None:
    """Re-encrypt every credential's secrets under a new key, in one transaction. Consoles
    read the key when they start: restart them with the new key afterwards (a console still
    on the old key refuses to use the secrets and says which key it needs)."""
    from surveyor.security.secretbox import (
        KEY_ENV,
        SecretBox,
        SecretKeyError,
        key_source,
        load_secret_box,
        new_key,
        read_key_file,
        write_key_file,
    )
    from surveyor.service.credentials import CredentialRefused, rotate_secrets
    from surveyor.service.notifications import NotificationRefused, rotate_rule_secrets
    from surveyor.store.engine import Database, data_dir, make_engine
    from surveyor.store.migrate import current_revision, head_revision

    directory = data_dir()
    try:
        old = load_secret_box(directory)
        source = key_source(directory)
        if new_key_file is not None and new_key_file.exists():
            new = SecretBox(read_key_file(new_key_file))
            target = None
        else:
            new = SecretBox(new_key())
            target = new_key_file or source
    except SecretKeyError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if target is None and new_key_file is None:
        raise CliError(
            f"the key comes from {KEY_ENV}, which this command cannot change: give "
            "--new-key-file PATH, then set the variable to that file's key",
            EXIT_USAGE,
        )
    if new.key_id == old.key_id:
        raise CliError(f"the new key is the current key ({old.key_id})", EXIT_USAGE)
    engine = make_engine()
    try:
        if current_revision(engine) != head_revision():
            raise CliError("the database is not up to date: run `surveyor db upgrade` first")
        staged = None
        if target is not None:
            # Written before the commit, put in place after it: whatever happens between,
            # the new key is on disk.
            staged = target.with_name(target.name + ".new")
            write_key_file(staged, new.key, replace=True)
        try:
            with Database(engine).write() as conn:
                done = rotate_secrets(conn, old, new)
                rules = rotate_rule_secrets(conn, old, new)
        except (CredentialRefused, NotificationRefused) as exc:
            if staged is not None:
                staged.unlink(missing_ok=True)
            raise CliError(exc.message) from exc
        if staged is not None and target is not None:
            staged.replace(target)
    finally:
        engine.dispose()
    out.print(
        f"Re-encrypted {done.secrets} secret(s) of {done.credentials} credential(s) from key "
        f"{old.key_id} to key {new.key_id}"
        + (f" ({done.already} already were)." if done.already else ".")
        + (f" Re-encrypted the secrets of {rules} notification rule(s)." if rules else ""),
        soft_wrap=True,
    )
    where = target if target is not None else new_key_file
    out.print(
        f"The new key is in {where}. Restart every console with it (SURVEYOR_SECRET_KEY_FILE="
        f"{where}, or SURVEYOR_SECRET_KEY set to its contents); until then they refuse to use "
        "the secrets.",
        soft_wrap=True,
    )
