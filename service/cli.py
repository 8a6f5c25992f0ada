"""The ``hpo`` command line: serve, demo, submit, follow, studies, show, extend, best,
compare, report, stop, trainables, token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from service.api.schemas import StudyPublic
from service.client import ApiError, HpoClient, ServiceUnreachable, StudyEvent, format_detail

if TYPE_CHECKING:  # the CLI stays free of SQLAlchemy until a token command needs the store
    from service.store import StudyStore

app = typer.Typer(
    help="hpo-service: hyperparameter search studies on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="HPO_URL", help="Service URL (default http://127.0.0.1:8000)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token (default: HPO_TOKEN, then the local token file HPO_HOME/api_token).",
        show_default=False,
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="markdown, csv or json.")]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", file_okay=False, help="Also write report.{md,csv,json} and chart.png here."
    ),
]
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}
AUTH_HINT = (
    "pass --token or set HPO_TOKEN; on the service's machine `hpo token show` prints the "
    "local token, and `hpo token create NAME` makes one"
)


def _client(url: str | None, token: str | None = None) -> HpoClient:
    return HpoClient(url, token=token)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a client call, turning service errors into a message and an exit code."""
    try:
        return function(*args, **kwargs)
    except ApiError as error:
        hint = f"\n{AUTH_HINT}" if error.status_code == 401 else ""
        raise _fail(
            f"the service answered {error.status_code}:\n{format_detail(error.detail)}{hint}"
        ) from None
    except ServiceUnreachable as error:
        raise _fail(f"{error}\nstart it with `hpo serve` or set HPO_URL") from None


def _best_text(study: StudyPublic) -> str:
    best = study.best_trial
    if best is None or best.best_value is None:
        return "-"
    return f"{best.best_value:.6g}"


def print_study(study: StudyPublic, base_url: str) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("study", f"{study.id} ({study.name})")
    table.add_row("status", study.status)
    table.add_row("trainable", f"{study.trainable}, {study.algorithm} + {study.scheduler}")
    table.add_row("trials", f"{study.num_trials}/{study.budget} " + str(study.trial_counts))
    table.add_row("results", str(study.num_results))
    table.add_row(f"best {study.metric} ({study.mode})", _best_text(study))
    if study.best_trial is not None:
        table.add_row("best config", str(study.best_trial.config))
    table.add_row("API", f"{base_url}/api/v1/studies/{study.id}")
    if study.ray_dashboard_url:
        table.add_row("Ray dashboard", study.ray_dashboard_url)
    if study.restarts:
        table.add_row("restarts", f"{study.restarts} (its Ray job died and was resubmitted)")
    if study.error:
        table.add_row("error", study.error.strip().splitlines()[-1][:300])
    console.print(table)


FINISHED_TRIAL = frozenset({"TERMINATED", "ERROR", "PRUNED"})


def follow_study(client: HpoClient, study_id: int) -> StudyPublic:
    """Follow the study's event stream: a progress bar (finished trials / budget, running
    trials, best so far, elapsed, ETA) until it ends, then a leaderboard."""
    study = _call(client.study, study_id)
    columns = (
        TextColumn("[bold]study {task.fields[sid]}[/bold] {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("running {task.fields[running]}  best {task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    states: dict[str, str] = {}
    best: float | None = None
    status = study.status
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            "trials", total=study.budget, sid=study.id, status=status, running=0, best="-"
        )
        for event in _events(client, study_id):
            if event.kind == "study":
                status = event.data["status"]
            elif event.kind == "trial":
                states[event.data["trial_id"]] = event.data["state"]
            elif event.kind == "result":
                states.setdefault(event.data["trial_id"], "RUNNING")
                value = event.data["metrics"].get(study.metric)
                if isinstance(value, int | float) and (
                    best is None or (value < best if study.mode == "min" else value > best)
                ):
                    best = float(value)
            finished = sum(1 for state in states.values() if state in FINISHED_TRIAL)
            progress.update(
                task,
                completed=finished,
                total=max(study.budget, len(states)),
                status=status,
                running=sum(1 for state in states.values() if state == "RUNNING"),
                best="-" if best is None else f"{best:.6g}",
            )
    study = _call(client.study, study_id)
    print_leaderboard(client, study)
    return study


def _events(client: HpoClient, study_id: int) -> Iterator[StudyEvent]:
    """The study's events, with service errors turned into a message and an exit code."""
    stream = client.events(study_id)
    while True:
        event = _call(next, stream, None)
        if event is None:
            return
        yield event


def print_leaderboard(client: HpoClient, study: StudyPublic, top: int = 10) -> None:
    page = _call(client.trials, study.id, limit=top, order="best")
    table = Table(
        "rank",
        "#",
        "state",
        f"best {study.metric}",
        "iters",
        "config",
        title=f"leaderboard ({study.mode} {study.metric})",
    )
    for rank, trial in enumerate(page.items, start=1):
        table.add_row(
            str(rank),
            str(trial.number),
            trial.state,
            "-" if trial.best_value is None else f"{trial.best_value:.6g}",
            str(trial.last_iteration or 0),
            str(trial.config),
        )
    console.print(table)


def _check_auth(settings: Any) -> None:
    """Refuse to start, with the reason and no traceback, where the service would refuse
    (the app checks again at start): bad tokens, or beyond loopback without tokens."""
    from service.auth import AuthConfigError
    from service.auth.authenticator import build_authenticator
    from service.store import StoreUnavailable, open_store

    try:
        store = open_store(settings.resolved_database_url)
    except StoreUnavailable:
        return  # the service reports it itself, and waits for nothing
    try:
        build_authenticator(settings, store)
    except AuthConfigError as error:
        raise _fail(str(error), code=2) from None
    finally:
        store.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HPO_PORT).")] = None,
) -> None:
    """Run the service. With no HPO_RAY_ADDRESS it starts a local Ray head with its dashboard."""
    import uvicorn

    from service.api.app import create_app
    from service.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as error:
        raise _fail(f"bad settings: {_settings_error(error)}", code=2) from None
    if host:
        settings.host = host
    if port:
        settings.port = port
    _check_auth(settings)
    if not settings.ray_address:
        # The embedded head runs with token auth; Ray reads the token settings when it
        # is imported, so point at the token before anything imports ray.
        from service.ray_local import default_token_path, ensure_ray_token, use_ray_token

        token_path = default_token_path(settings.local_ray_dir)
        ensure_ray_token(token_path)
        use_ray_token(token_path)
    if not settings.api_tokens.get_secret_value():
        err_console.print(
            f"API token: the local token file {settings.token_file} (made at first start; "
            "`hpo token show` prints it, the web page asks for it once)"
        )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the demo service.")] = 8000,
    keep: Annotated[bool, typer.Option(help="Keep the service running after the study.")] = False,
) -> None:
    """Start the service, run the example study with a progress bar, print the best trial."""
    from service.demo import run_demo

    raise typer.Exit(run_demo(port=port, keep=keep, console=console))


@app.command()
def submit(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="Study spec (YAML or JSON)."
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show progress until the study ends.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Submit a study spec."""
    with _client(url, token) as client:
        study = _call(client.submit, file)
        console.print(
            f"submitted study [bold]{study.id}[/bold] ({study.name}), status {study.status}"
        )
        if follow:
            study = follow_study(client, study.id)
            print_study(study, client.base_url)
            if study.status != "COMPLETED":
                raise typer.Exit(1)


@app.command()
def follow(study_id: int, url: UrlOption = None, token: TokenOption = None) -> None:
    """Show a study's progress until it ends."""
    with _client(url, token) as client:
        study = follow_study(client, study_id)
        print_study(study, client.base_url)


@app.command()
def studies(
    status: Annotated[str | None, typer.Option(help="Only studies in this status.")] = None,
    limit: int = 50,
    offset: int = 0,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List studies, newest first."""
    with _client(url, token) as client:
        page = _call(
            client.studies, status=status.upper() if status else None, limit=limit, offset=offset
        )
    table = Table("id", "name", "status", "trainable", "algorithm", "trials", "best")
    for study in page.items:
        table.add_row(
            str(study.id),
            study.name,
            study.status,
            study.trainable,
            study.algorithm,
            f"{study.num_trials}/{study.budget}",
            _best_text(study),
        )
    console.print(table)
    console.print(f"{len(page.items)} of {page.total}")


@app.command()
def show(study_id: int, url: UrlOption = None, token: TokenOption = None) -> None:
    """Show one study: status, trial counts, best trial, links."""
    with _client(url, token) as client:
        print_study(_call(client.study, study_id), client.base_url)


@app.command()
def trials(
    study_id: int,
    limit: int = 20,
    order: Annotated[str, typer.Option(help="number or best")] = "best",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A study's trials (best first by default)."""
    with _client(url, token) as client:
        page = _call(client.trials, study_id, limit=limit, order=order)
    table = Table("#", "trial", "state", "best", "last", "iters", "config")
    for trial in page.items:
        table.add_row(
            str(trial.number),
            trial.trial_id,
            f"{trial.state} ({trial.reason})" if trial.reason else trial.state,
            "-" if trial.best_value is None else f"{trial.best_value:.6g}",
            "-" if trial.last_value is None else f"{trial.last_value:.6g}",
            str(trial.last_iteration or 0),
            str(trial.config),
        )
    console.print(table)
    console.print(f"{len(page.items)} of {page.total}")


@app.command()
def extend(
    study_id: int,
    num_samples: Annotated[
        int | None, typer.Option("--num-samples", "-n", help="The new total of trials.")
    ] = None,
    time_budget_s: Annotated[
        float | None, typer.Option("--time-budget-s", help="The new total time budget (s).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show progress until the study ends.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Raise a study's num_samples and/or time budget; it goes on from every trial it ran."""
    if num_samples is None and time_budget_s is None:
        raise _fail("give --num-samples, --time-budget-s or both (the new totals)", code=2)
    with _client(url, token) as client:
        study = _call(client.extend, study_id, num_samples=num_samples, time_budget_s=time_budget_s)
        console.print(
            f"study [bold]{study.id}[/bold] extended to {study.budget} trials, "
            f"status {study.status}"
        )
        if follow:
            print_study(follow_study(client, study.id), client.base_url)


@app.command()
def best(
    study_id: int,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print the best trial as JSON: its `config` posts straight back as a new study's
    config or a comparison's baseline."""
    import json

    with _client(url, token) as client:
        found = _call(client.best, study_id)
    typer.echo(json.dumps(found.model_dump(mode="json"), indent=2))


@app.command()
def compare(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Comparison (YAML or JSON): trainable, baseline, variants, repeats.",
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Wait for the runs, then report.")
    ] = True,
    report_format: FormatOption = "markdown",
    out: OutOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Compare a baseline config with variants over seeds: a table of deltas with 95 %
    intervals (accuracy, loss, training time, memory, throughput, latency)."""
    if report_format not in REPORT_FORMATS:
        raise _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}", code=2)
    with _client(url, token) as client:
        comparison = _call(client.compare, file)
        console.print(
            f"submitted comparison [bold]{comparison.id}[/bold] ({comparison.name}): "
            f"{comparison.budget} runs, page {client.base_url}{comparison.page_url}"
        )
        if not follow:
            return
        study = follow_study(client, comparison.id)
        print_report(client, comparison.id, report_format, out)
        if study.status != "COMPLETED":
            raise typer.Exit(1)


@app.command()
def report(
    comparison_id: int,
    report_format: FormatOption = "markdown",
    out: OutOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print a comparison's report (so far, while it runs)."""
    if report_format not in REPORT_FORMATS:
        raise _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}", code=2)
    with _client(url, token) as client:
        print_report(client, comparison_id, report_format, out)


REPORT_FORMATS = ("markdown", "csv", "json")


def print_report(
    client: HpoClient, comparison_id: int, report_format: str, out: Path | None
) -> None:
    typer.echo(_call(client.comparison_report, comparison_id, report_format))
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, kind in (("report.md", "markdown"), ("report.csv", "csv"), ("report.json", "json")):
        (out / name).write_text(_call(client.comparison_report, comparison_id, kind))
    (out / "chart.png").write_bytes(_call(client.comparison_chart, comparison_id))
    console.print(f"wrote report.md, report.csv, report.json and chart.png to {out}")


@app.command()
def stop(study_id: int, url: UrlOption = None, token: TokenOption = None) -> None:
    """Stop a running study; its running trials end and what they reported is kept."""
    with _client(url, token) as client:
        study = _call(client.stop, study_id)
    console.print(f"study {study.id} is {study.status}")


@app.command()
def delete(study_id: int, url: UrlOption = None, token: TokenOption = None) -> None:
    """Delete a finished study with its trials and results."""
    with _client(url, token) as client:
        _call(client.delete, study_id)
    console.print(f"study {study_id} deleted")


@app.command("trainables")
def trainables_command(url: UrlOption = None, token: TokenOption = None) -> None:
    """What studies can train, with their metrics."""
    with _client(url, token) as client:
        items = _call(client.trainables)
    table = Table("name", "metrics", "default", "fidelity", "Ray Train workers", "description")
    for item in items:
        table.add_row(
            item.name,
            ", ".join(item.metrics),
            f"{item.default_metric} ({item.default_mode})",
            item.fidelity_key or "-",
            "yes" if item.uses_train_workers else "no",
            item.description,
        )
    console.print(table)


token_app = typer.Typer(
    help="API tokens: show the one this CLI uses; create, list and revoke stored ones.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@token_app.command("show")
def token_show(url: UrlOption = None, token: TokenOption = None) -> None:
    """Print the token the CLI would use (alone on the last line): --token, the URL's
    credentials, HPO_TOKEN, or the local token file HPO_HOME/api_token."""
    client = HpoClient(url, token=token)
    try:
        value, source = client.auth.resolve()
    finally:
        client.close()
    if not value:
        raise _fail(
            f"no API token: {AUTH_HINT}; the embedded service writes "
            "HPO_HOME/api_token (default .hpo/api_token) at its first start"
        )
    err_console.print(f"token from {source}")
    print(value)


def _settings_error(error: ValueError) -> str:
    """A settings error as its messages, each after the variable it is about
    (``HPO_WARM_RUNNERS: Input should be ...``), without pydantic's framing."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    messages = []
    for item in errors():
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        field = ".".join(str(part) for part in item.get("loc", ()))
        messages.append(f"HPO_{field.upper()}: {message}" if field else message)
    return "; ".join(messages)


def _open_token_store() -> StudyStore:
    from service.settings import Settings
    from service.store import StoreUnavailable, open_store

    try:
        settings = Settings()
    except ValueError as error:
        raise _fail(f"bad settings: {_settings_error(error)}") from None
    try:
        return open_store(settings.resolved_database_url)
    except StoreUnavailable as error:
        raise _fail(f"{error}\nset HPO_DATABASE_URL (or HPO_HOME) to the service's") from None


@token_app.command("create")
def token_create(
    principal: Annotated[str, typer.Argument(help="Who the token acts for (owns its studies).")],
    admin: Annotated[
        bool, typer.Option("--admin", help="The token sees and touches every study.")
    ] = False,
) -> None:
    """Make a token, store its hash in the service's database (HPO_DATABASE_URL or
    HPO_HOME) and print the token once, alone on the last line."""
    from service.auth import generate_token, hash_token, valid_principal_name

    if not valid_principal_name(principal):
        raise _fail(f"{principal!r} is not a principal name (letters, digits, '._@-')")
    store = _open_token_store()
    try:
        value = generate_token()
        record = store.add_api_token(
            token_hash=hash_token(value), principal=principal, is_admin=admin
        )
    finally:
        store.close()
    role = "admin" if admin else "user"
    err_console.print(
        f"token {record.id} for {principal} ({role}); it is shown only now, keep it secret:"
    )
    print(value)


@token_app.command("list")
def token_list() -> None:
    """The tokens stored in the service's database (their hashes, never the tokens)."""
    store = _open_token_store()
    try:
        records = store.list_api_tokens()
    finally:
        store.close()
    table = Table("id", "principal", "admin", "created", "sha256")
    for record in records:
        table.add_row(
            str(record.id),
            record.principal,
            "yes" if record.is_admin else "no",
            record.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            record.token_hash[:12] + "…",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Delete a stored token; the service stops accepting it within seconds."""
    from service.store import TokenNotFound

    store = _open_token_store()
    try:
        store.delete_api_token(token_id)
    except TokenNotFound as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    console.print(f"token {token_id} revoked")


def main() -> None:
    app(prog_name="hpo")


if __name__ == "__main__":
    main()
