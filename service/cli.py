"""The ``hpo`` command line: serve, demo, submit, follow, studies, show, stop, trainables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

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
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def _client(url: str | None) -> HpoClient:
    return HpoClient(url)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a client call, turning service errors into a message and an exit code."""
    try:
        return function(*args, **kwargs)
    except ApiError as error:
        raise _fail(
            f"the service answered {error.status_code}:\n{format_detail(error.detail)}"
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HPO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HPO_PORT).")] = None,
) -> None:
    """Run the service. With no HPO_RAY_ADDRESS it starts a local Ray head with its dashboard."""
    import uvicorn

    from service.api.app import create_app
    from service.settings import get_settings

    settings = get_settings()
    if not settings.ray_address:
        # The embedded head runs with token auth; Ray reads the token settings when it
        # is imported, so point at the token before anything imports ray.
        from service.ray_local import default_token_path, ensure_ray_token, use_ray_token

        token_path = default_token_path(settings.local_ray_dir)
        ensure_ray_token(token_path)
        use_ray_token(token_path)
    if host:
        settings.host = host
    if port:
        settings.port = port
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
) -> None:
    """Submit a study spec."""
    with _client(url) as client:
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
def follow(study_id: int, url: UrlOption = None) -> None:
    """Show a study's progress until it ends."""
    with _client(url) as client:
        study = follow_study(client, study_id)
        print_study(study, client.base_url)


@app.command()
def studies(
    status: Annotated[str | None, typer.Option(help="Only studies in this status.")] = None,
    limit: int = 50,
    offset: int = 0,
    url: UrlOption = None,
) -> None:
    """List studies, newest first."""
    with _client(url) as client:
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
def show(study_id: int, url: UrlOption = None) -> None:
    """Show one study: status, trial counts, best trial, links."""
    with _client(url) as client:
        print_study(_call(client.study, study_id), client.base_url)


@app.command()
def trials(
    study_id: int,
    limit: int = 20,
    order: Annotated[str, typer.Option(help="number or best")] = "best",
    url: UrlOption = None,
) -> None:
    """A study's trials (best first by default)."""
    with _client(url) as client:
        page = _call(client.trials, study_id, limit=limit, order=order)
    table = Table("#", "trial", "state", "best", "last", "iters", "config")
    for trial in page.items:
        table.add_row(
            str(trial.number),
            trial.trial_id,
            trial.state,
            "-" if trial.best_value is None else f"{trial.best_value:.6g}",
            "-" if trial.last_value is None else f"{trial.last_value:.6g}",
            str(trial.last_iteration or 0),
            str(trial.config),
        )
    console.print(table)
    console.print(f"{len(page.items)} of {page.total}")


@app.command()
def stop(study_id: int, url: UrlOption = None) -> None:
    """Stop a running study; its running trials end and what they reported is kept."""
    with _client(url) as client:
        study = _call(client.stop, study_id)
    console.print(f"study {study.id} is {study.status}")


@app.command()
def delete(study_id: int, url: UrlOption = None) -> None:
    """Delete a finished study with its trials and results."""
    with _client(url) as client:
        _call(client.delete, study_id)
    console.print(f"study {study_id} deleted")


@app.command("trainables")
def trainables_command(url: UrlOption = None) -> None:
    """What studies can train, with their metrics."""
    with _client(url) as client:
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


def main() -> None:
    app(prog_name="hpo")


if __name__ == "__main__":
    main()
