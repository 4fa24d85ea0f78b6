"""``twinning users`` (accounts and API tokens) and ``twinning matches`` (the match workflow's upkeep).

These commands need only the database: they start without the web app or the matcher.
"""

from __future__ import annotations

import click

from api.cli.context import city_id, data_session


@click.group("users")
def users_group() -> None:
    """Accounts: officials (bound to cities), coordinators (optionally scoped to countries), admins."""


@users_group.command("create")
@click.option("--name", required=True, help="Login name (letters, digits, . _ - @).")
@click.option("--role", required=True, type=click.Choice(["official", "coordinator", "admin"]), help="The role.")
@click.option("--city", "cities", multiple=True, help="An official's city: geonameid or name; repeatable.")
@click.option("--country", "countries", multiple=True, help="A coordinator's country (ISO code); repeatable.")
@click.option("--display-name", default="", help="The name shown in the console.")
@click.option("--password", help="Console password (or use --prompt-password); without one, API tokens only.")
@click.option("--prompt-password", is_flag=True, help="Ask for the console password.")
def users_create(
    name: str,
    role: str,
    cities: tuple[str, ...],
    countries: tuple[str, ...],
    display_name: str,
    password: str | None,
    prompt_password: bool,
) -> None:
    """Create a user and print a new API token (shown once: store it now)."""

    from api.domain.accounts import create_user, issue_token
    from api.errors import TwinningError

    if prompt_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with data_session() as (_settings, session):
        try:
            user = create_user(
                session,
                name=name,
                role=role,
                password=password,
                cities=[city_id(session, c) for c in cities],
                countries=countries,
                display_name=display_name,
            )
            token = issue_token(session, user, label="created with the user")
            session.commit()
        except TwinningError as e:
            raise click.UsageError(str(e)) from e
        click.echo(
            f"created {user.role} {user.name!r} (id {user.id})" + (f", cities {user.cities}" if user.cities else "")
        )
    click.echo("API token (shown once; send it as 'Authorization: Bearer <token>'):")
    click.echo(token)


@users_group.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
def users_token(name: str, label: str) -> None:
    """Issue another API token for user NAME (shown once)."""

    from api.domain.accounts import get_user, issue_token

    with data_session() as (_settings, session):
        user = get_user(session, name)
        if user is None:
            raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        token = issue_token(session, user, label=label)
        session.commit()
    click.echo(token)


@users_group.command("revoke")
@click.argument("name", required=False)
@click.option("--token", "prefix", help="Revoke only the token starting with this (its first 10 characters).")
def users_revoke(name: str | None, prefix: str | None) -> None:
    """Revoke every API token of user NAME, or one token by its prefix (--token tw_abc1234)."""

    from api.domain.accounts import get_user, revoke_tokens
    from api.errors import TwinningError

    with data_session() as (_settings, session):
        user = None
        if name:
            user = get_user(session, name)
            if user is None:
                raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        try:
            n = revoke_tokens(session, user=user, prefix=prefix)
        except TwinningError as e:
            raise click.UsageError(str(e)) from e
        session.commit()
    click.echo(f"revoked {n} token(s)")


@users_group.command("password")
@click.argument("name")
@click.password_option(help="The new console password.")
def users_password(name: str, password: str) -> None:
    """Set user NAME's console password (logs out their other console sessions)."""

    from api.domain.accounts import get_user, set_password

    with data_session() as (_settings, session):
        user = get_user(session, name)
        if user is None:
            raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        set_password(session, user, password)
        session.commit()
    click.echo(f"password of {name!r} changed")


@users_group.command("list")
def users_list() -> None:
    """List the users with their roles, cities, countries and number of live tokens."""
    from api.data.accounts import list_users

    with data_session() as (_settings, session):
        page, total = 1, None
        while total is None or (page - 1) * 500 < total:
            rows, total = list_users(session, page=page, per_page=500)
            for u, n in rows:
                scope = ",".join(map(str, u.cities or [])) or ",".join(u.countries or []) or "-"
                demo = "  (demo)" if u.demo else ""
                click.echo(f"{u.id:>4}  {u.name:<24} {u.role:<12} {scope:<24} tokens: {n}{demo}")
            page += 1


@click.group("matches")
def matches_group() -> None:
    """The match workflow (proposals and their review)."""


@matches_group.command("expire")
def matches_expire() -> None:
    """Expire proposals and accepted matches that waited too long (TWINNING_MATCH_*_DAYS); idempotent."""

    from api.domain.workflow import expire_due

    with data_session() as (settings, session):
        ids = expire_due(session, settings)
    click.echo(f"expired {len(ids)} match(es)" + (f": {', '.join(map(str, ids))}" if ids else ""))
