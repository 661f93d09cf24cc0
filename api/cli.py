"""`roomguard users SITE …` (local users and API tokens of the web API) and `roomguard api SITE` (serve it).

roomguard users SITE add NAME --role R [--role R2] [--display-name …] [--password-file F]
roomguard users SITE passwd NAME [--password-file F]
roomguard users SITE disable|enable NAME
roomguard users SITE roles NAME --role R [--role R2]
roomguard users SITE list [--json]
roomguard users SITE token create NAME --user U      (prints the token once)
roomguard users SITE token revoke NAME
roomguard users SITE token list
roomguard api SITE [--host H] [--port P]
"""

from __future__ import annotations

import getpass
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bus.process import DEFAULT_STATE, StateDir, Verbose, start_logging
from siteconfig.cli import SiteArg, SiteFirst, load_site_or_exit
from siteconfig.config import SiteConfig

if TYPE_CHECKING:
    from api.store import ApiStore


class _UsersFirst(SiteFirst):
    default_command = "list"


users_app = typer.Typer(
    cls=_UsersFirst, help="Users and API tokens of the web API. 網頁與 API 使用者。", no_args_is_help=True
)
token_app = typer.Typer(cls=_UsersFirst, help="API tokens for scripts. API 權杖。", no_args_is_help=True)
users_app.add_typer(token_app, name="token")

NameArg = Annotated[str, typer.Argument(help="User name.")]
RoleOption = Annotated[
    list[str], typer.Option("--role", help="Role: viewer, operator, approver, auditor, admin (repeatable).")
]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the password from this file's first line (else asked twice)."),
]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who does it (audit log); default the login name.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _store(site: SiteConfig, state_dir: Path) -> ApiStore:
    from api.store import ApiStore
    from bus.state_dir import prepare_state_dir
    from records.db import make_engine, session_factory
    from records.migrate import upgrade
    from records.site import records_url

    prepare_state_dir(state_dir)
    engine = make_engine(records_url(site, state_dir))
    upgrade(engine)
    return ApiStore(session_factory(engine), site.api.passwords)


def _actor(by: str | None) -> Any:
    from records.audit import cli_actor

    return cli_actor(by or getpass.getuser())


def _password(password_file: Path | None) -> str:
    if password_file is None:
        value: str = typer.prompt("密碼 Password", hide_input=True, confirmation_prompt=True)
        return value
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise _fail(f"cannot read 無法讀取 {password_file}: {exc.strerror}") from None
    if not lines or not lines[0]:
        raise _fail(f"{password_file}: the first line is empty 第一行是空的")
    return lines[0]


def _refused(exc: Exception) -> typer.Exit:
    return _fail(f"refused 拒絕: {exc}", 3)


@users_app.command("add")
def add(
    path: SiteArg,
    name: NameArg,
    role: RoleOption,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Name people see.")] = None,
    password_file: PasswordFile = None,
    by: ByOption = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Add a user with roles and a password (the site's password rules apply). 新增使用者。"""
    from api.roles import UnknownRole
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    store = _store(site, state_dir)
    password = _password(password_file)
    try:
        user = store.add_user(name, password, role, _actor(by), datetime.now(UTC), display_name)
    except (UserError, UnknownRole) as exc:
        raise _refused(exc) from None
    typer.echo(f"added 已新增 {user.username} ({', '.join(user.roles)})")


@users_app.command("passwd")
def passwd(
    path: SiteArg,
    name: NameArg,
    password_file: PasswordFile = None,
    by: ByOption = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Set a user's password; their sessions end, a lock-out is lifted. 變更密碼。"""
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    store = _store(site, state_dir)
    if store.get_user(name) is None:
        raise _refused(UserError(f"沒有此使用者 no user {name!r}"))
    try:
        store.set_password(name, _password(password_file), _actor(by), datetime.now(UTC))
    except UserError as exc:
        raise _refused(exc) from None
    typer.echo(f"password changed 密碼已變更: {name}")


def _set_disabled(path: Path, name: str, disabled: bool, by: str | None, state_dir: Path) -> None:
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    try:
        _store(site, state_dir).set_disabled(name, disabled, _actor(by), datetime.now(UTC))
    except UserError as exc:
        raise _refused(exc) from None
    typer.echo(f"{'disabled 已停用' if disabled else 'enabled 已啟用'}: {name}")


@users_app.command("disable")
def disable(path: SiteArg, name: NameArg, by: ByOption = None, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Disable a user: their sessions end and their tokens stop working. 停用使用者。"""
    _set_disabled(path, name, True, by, state_dir)


@users_app.command("enable")
def enable(path: SiteArg, name: NameArg, by: ByOption = None, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Enable a disabled user again. 啟用使用者。"""
    _set_disabled(path, name, False, by, state_dir)


@users_app.command("roles")
def roles(
    path: SiteArg, name: NameArg, role: RoleOption, by: ByOption = None, state_dir: StateDir = DEFAULT_STATE
) -> None:
    """Replace a user's roles. 變更角色。"""
    from api.roles import UnknownRole
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    try:
        user = _store(site, state_dir).set_roles(name, role, _actor(by), datetime.now(UTC))
    except (UserError, UnknownRole) as exc:
        raise _refused(exc) from None
    typer.echo(f"roles 角色: {user.username} ({', '.join(user.roles)})")


@users_app.command("list")
def list_(
    path: SiteArg,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Every user: roles, state. 使用者清單。"""
    site = load_site_or_exit(path, secrets=False)
    users = _store(site, state_dir).list_users()
    if as_json:
        typer.echo(json.dumps([u.to_json() for u in users], ensure_ascii=False, indent=2))
        return
    if not users:
        typer.echo("no users yet 尚無使用者: roomguard users SITE add NAME --role admin")
        return
    now = datetime.now(UTC)
    for u in users:
        state = "disabled 停用" if u.disabled else "active 啟用"
        if u.locked_until and u.locked_until > now:
            state += f", locked until 鎖定至 {u.locked_until:%Y-%m-%d %H:%M} UTC"
        typer.echo(f"{u.username:<20} {u.display_name:<20} {','.join(u.roles):<28} {state}")


@token_app.command("create")
def token_create(
    path: SiteArg,
    name: Annotated[str, typer.Argument(help="Token name (what the script is).")],
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    by: ByOption = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Create an API token and print it once: only its hash is kept. 建立 API 權杖 僅顯示一次。"""
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    try:
        token = _store(site, state_dir).create_token(name, user, _actor(by), datetime.now(UTC))
    except UserError as exc:
        raise _refused(exc) from None
    typer.echo(f"token {name} for 使用者 {user}; shown once 僅顯示一次:", err=True)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(
    path: SiteArg,
    name: Annotated[str, typer.Argument(help="Token name.")],
    by: ByOption = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Revoke an API token at once. 撤銷 API 權杖。"""
    from api.store import UserError

    site = load_site_or_exit(path, secrets=False)
    try:
        _store(site, state_dir).revoke_token(name, _actor(by), datetime.now(UTC))
    except UserError as exc:
        raise _refused(exc) from None
    typer.echo(f"revoked 已撤銷: {name}")


@token_app.command("list")
def token_list(path: SiteArg, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Every token: user, created, last used, revoked (never the token). API 權杖清單。"""
    site = load_site_or_exit(path, secrets=False)

    def when(at: datetime | None) -> str:
        return f"{at:%Y-%m-%d %H:%M}" if at else "—"

    for t in _store(site, state_dir).list_tokens():
        state = f"revoked 已撤銷 {when(t.revoked_at)}" if t.revoked_at else "active 有效"
        typer.echo(f"{t.name:<24} {t.username:<20} {when(t.created_at)}  {when(t.last_used_at)}  {state}")


def serve(
    path: SiteArg,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (default api.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (default api.port).")] = None,
    state_dir: StateDir = DEFAULT_STATE,
    verbose: Verbose = False,
) -> None:
    """Serve the web API and pages (loopback unless the site file says otherwise; HTTPS with
    api.tls_cert/tls_key). `roomguard run` runs it too when the site file says api.enabled: true.
    提供網頁與 API。"""
    from api.app import create_app
    from api.serving import PortTaken, bind, serve_api
    from bus.process import run_jobs
    from bus.state_dir import prepare_state_dir
    from records.migrate import upgrade
    from records.site import records_url
    from siteconfig.api_config import is_loopback

    start_logging(verbose)
    site = load_site_or_exit(path)
    settings = site.api
    if host is not None:
        settings = settings.model_copy(update={"host": host})
    for f in (settings.tls_cert, settings.tls_key):
        if f is not None and not f.is_file():
            raise _fail(f"api: TLS file not found 找不到 TLS 檔案: {f}")
    if not is_loopback(settings.host) and settings.tls_cert is None:
        # Off loopback the session cookie is Secure (sent over HTTPS only): plain HTTP works only behind
        # a reverse proxy that terminates TLS, and passwords would cross the network in clear otherwise.
        logging.getLogger(__name__).warning(
            "api: listening on %s without TLS 未啟用 TLS: put an HTTPS reverse proxy in front, or set "
            "api.tls_cert and api.tls_key",
            settings.host,
        )
    try:
        sock = bind(settings.host, port or settings.port)
    except PortTaken as exc:
        raise _fail(str(exc)) from None  # exit 2: `roomguard run` does not restart it in a loop
    prepare_state_dir(state_dir)
    url = records_url(site, state_dir)
    upgrade(url)
    app = create_app(settings, records_url=url, state_dir=state_dir, site=site)
    run_jobs([lambda stop: serve_api(app, settings, sock, state_dir, stop)])


def register(app: typer.Typer) -> None:
    """Mount `users` and `api` on the root `roomguard` app."""
    app.add_typer(users_app, name="users")
    app.command("api")(serve)
