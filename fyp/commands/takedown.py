"""`fyp takedown VIDEO --reason ... --notice-id ... [--restore] [--json]`: file a takedown or a counter-notice.

Without `--api` it runs `fyp.uploads.takedowns.TakedownService` in-process, wired like the API
(`fyp.uploads.wiring.takedown_service`); with `--api URL` (or FYP_UPLOAD_API) it POSTs /v1/takedowns to a running
`fyp serve upload`. Either way: the published media is blocked (or restored) before the command returns, a
Takedown record is emitted, and an audit row lands in `moderation.takedowns`. Exit 0 when all three happened.
"""

from __future__ import annotations

import getpass
from typing import Any

import httpx
import typer
from pydantic import ValidationError
from rich.table import Table

from fyp.commands.output import console, err_console, print_json
from fyp.config import load_settings
from fyp.uploads.service import ApiError
from fyp.uploads.takedowns import TakedownRequest

__all__ = ["register"]


def takedown(
    video_id: str = typer.Argument(..., help="The video to take down or restore."),
    reason: str = typer.Option(None, "--reason", help="Why (required for a takedown), e.g. 'copyright: song'."),
    notice_id: str = typer.Option(..., "--notice-id", help="Id of the DMCA notice or counter-notice."),
    claimant: str = typer.Option(None, "--claimant", help="Who filed the notice."),
    restore: bool = typer.Option(False, "--restore", help="A counter-notice: put the video back."),
    api: str = typer.Option(None, "--api", envvar="FYP_UPLOAD_API",
                            help="Upload API base URL; default: run the takedown in-process."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Take a video down after a legal notice (its media blocked, status removed), or restore it."""
    if reason is None and not restore:
        _fail(400, "invalid_request", "--reason is required for a takedown")
    fields = {"video_id": video_id, "reason": reason or "counter-notice", "notice_id": notice_id,
              "claimant": claimant, "action": "restore" if restore else "takedown"}
    try:
        body = TakedownRequest(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(422, "invalid_request", problems)
    try:
        result = _over_http(api, body) if api else _in_process(body)
    except ApiError as exc:
        _fail(exc.status, exc.code, exc.message)
    if as_json:
        print_json(result)
        return
    table = Table("field", "value", show_header=False)
    for name, value in result.items():
        table.add_row(name, str(value))
    console.print(table)


def _in_process(body: TakedownRequest) -> dict[str, Any]:
    from fyp.uploads.wiring import takedown_service

    return takedown_service(load_settings()).file(body, filed_by=f"cli:{getpass.getuser()}")


def _over_http(api: str, body: TakedownRequest) -> dict[str, Any]:
    try:
        response = httpx.post(f"{api.rstrip('/')}/v1/takedowns", json=body.model_dump(), timeout=60)
    except httpx.HTTPError as exc:
        raise ApiError(503, "api_unreachable", f"{api}: {exc}") from exc
    if response.status_code >= 400:
        error = response.json().get("error", {}) if "json" in response.headers.get("content-type", "") else {}
        raise ApiError(response.status_code, error.get("code", "http_error"), error.get("message", response.text))
    return response.json()


def _fail(status: int, code: str, message: str) -> None:
    err_console.print(f"[bold red]error:[/] {code} ({status}): {message}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `takedown` to the app."""
    app.command()(takedown)
