"""The ``soma`` command."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

if TYPE_CHECKING:
    from .demo import DemoReport, DemoTeacher
    from .engine import SomaEngine

app = typer.Typer(
    help="SOMA: serve later turns of multi-turn LLM apps from an adapted local model.", no_args_is_help=True
)
sessions_app = typer.Typer(help="Inspect and manage stored sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
adapters_app = typer.Typer(help="Inspect and delete session adapters.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


# The demo's adaptation budget: the default strategy (soma) at small step counts. Quick: short
# enough that the job (mining, LoRA, gate) ends within a few turns' think time on a 2-core CPU.
# A fixed audit seed makes a run repeatable; the audit rate stays the default.
DEMO_FULL: dict[str, Any] = {"max_new_tokens": 64, "gate": {"audit_seed": 0}}
DEMO_QUICK: dict[str, Any] = {
    "max_new_tokens": 48,
    "mining": {"steps": 4, "candidates": 2},
    "lora": {"steps": 6, "batch_size": 1, "max_seq_len": 256},
    "gate": {"audit_seed": 0},
}


def _set_threads(threads: int) -> None:
    """Cap torch's intra-op threads. The stand-in teacher, live turns and the background job
    each run ops on their own thread; with every op also asking for all cores, a 2-core CPU
    is oversubscribed and OpenMP's spinning threads slow generation many times over."""
    import torch

    torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))


def _quiet_third_parties() -> None:
    """Keep the demo's screen to its own table: no weight-loading bars or deprecation notices
    from transformers (SOMA's own messages go through the ``soma`` loggers)."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def _excerpt(text: str) -> str:
    return " ".join(text.split())


def turn_lines(row: Any) -> list[str]:
    """One demo turn as short lines (rich markup), each cut to the terminal's width when printed:
    a header, the question, and for a local turn its answer beside the recorded one."""
    color = "green" if row.served_by == "surrogate" else "cyan"
    head = f"turn {row.turn:>2} [{color}]{row.served_by:<9}[/{color}] {row.latency_ms:>6.0f} ms"
    if row.served_by == "teacher":
        head += f"  {row.teacher_tokens:>5} tok billed"
    else:
        head += f"  {row.surrogate_tokens:>5} tok local"
    if row.similarity is not None and row.served_by == "surrogate":
        head += f"  sim {row.similarity:.2f}"
    if row.locality is not None:
        head += f"  loc {row.locality:.2f}"
    if row.reason:
        head += f"  [dim]{escape(row.reason)}[/dim]"
    lines = [head, f"   [dim]Q[/dim] {escape(_excerpt(row.query))}"]
    if row.served_by == "surrogate":
        lines.append(f"   [green]served  [/green] {escape(_excerpt(row.text))}")
        if row.reference:
            lines.append(f"   [dim]recorded[/dim] {escape(_excerpt(row.reference))}")
    return lines


@app.command()
def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="small adaptation budget and short answers (about 3 CPU-minutes)")
    ] = False,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="default: a ShareGPT conversation replayed with its recorded ChatGPT answers; 'scripted' for a "
            "scripted coach; 'local' for the SmolLM2 base model; provider:model for LangChain's init_chat_model "
            "(needs LangChain)"
        ),
    ] = None,
    conversation: Annotated[
        str, typer.Option(help="ShareGPT conversation id to replay (see soma_engine.datasets.sharegpt)")
    ] = "saRnwpk_0",
    surrogate: Annotated[
        str | None, typer.Option(help="surrogate: HF id or path (default: the bundled SmolLM2-135M-Instruct)")
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for report.json and tokens.png")] = Path("soma-demo"),
    store: Annotated[str | None, typer.Option(help="store URL, e.g. sqlite:///path.db (default: user cache)")] = None,
    think_time: Annotated[
        float, typer.Option(help="seconds of user 'think time' between turns, used by background adaptation")
    ] = 10.0,
    threads: Annotated[
        int, typer.Option(min=0, help="torch CPU threads; 0: half the cores (the teacher and adaptation share them)")
    ] = 0,
) -> None:
    """Replay a real multi-turn conversation through the engine on the embedded defaults."""
    from .datasets.sharegpt import DatasetMissing
    from .demo import make_teacher

    _set_threads(threads)
    _quiet_third_parties()
    try:
        engine = _demo_engine(quick, store, surrogate)
        played = make_teacher(teacher, engine, engine.config.max_new_tokens, conversation)
    except (ValueError, KeyError, DatasetMissing) as exc:
        _fail(str(exc).strip("\"'"))
    cfg = engine.config
    console.print(f"[bold]SOMA demo[/bold]: {len(played.queries)} turns, warm window W={cfg.warm_window}.")
    console.print(f"[yellow]{escape(played.note)}[/yellow].")
    console.print(f"Surrogate: {escape(engine.surrogate.model_path)} + a session LoRA (strategy {cfg.strategy}).")
    try:
        report = _play(engine, played, think_time)
    finally:
        engine.close()
        played.close()
    report.teacher_is_stand_in = played.stand_in
    _print_summary(report, report.write(out), out)


def _demo_engine(quick: bool, store: str | None, surrogate: str | None) -> SomaEngine:
    """The demo's engine: the demo budget (quick or full) over the usual configuration."""
    from .config import SomaConfig
    from .engine import SomaEngine

    cfg = SomaConfig.load(**(DEMO_QUICK if quick else DEMO_FULL))
    return SomaEngine(config=cfg, store=store, namespace="demo", surrogate=surrogate)


def _play(engine: SomaEngine, played: DemoTeacher, think_time: float) -> DemoReport:
    """Play the demo's conversation through ``engine.chat`` in a fresh session, printing each
    turn and the background adaptation's progress; returns the :class:`DemoReport`."""
    from .acceptance.bounds import gap
    from .demo import TurnRow, run_demo
    from .types import normalize_messages

    session_id = f"demo-{uuid.uuid4().hex[:8]}"
    rt = engine.surrogate

    def on_turn(row: TurnRow) -> None:
        for line in turn_lines(row):
            console.print(line, no_wrap=True, overflow="ellipsis", crop=True)

    def similarity(served: str, recorded: str) -> float:
        emb = engine.encoder.encode([served, recorded])
        return 1.0 - float(gap(emb[0], emb[1]))

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console)
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, step: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"adaptation: {stage}", total=total)
        progress.update(tasks[stage], completed=step, total=total)

    engine.on_progress = on_progress
    with progress:
        return run_demo(
            lambda history: engine.chat(session_id, history, played.teacher),
            engine,
            session_id=session_id,
            on_turn=on_turn,
            count_prompt=lambda msgs: rt.count_tokens(rt.render(normalize_messages(msgs))),
            settle=think_time,
            queries=played.queries,
            system=played.system,
            references=played.references or None,
            similarity=similarity if played.references else None,
        )


def _print_summary(report: DemoReport, path: Path, out: Path) -> None:
    """The demo's closing lines: tokens saved, turns served locally, where the report went."""
    summary = [
        f"teacher tokens: {report.teacher_tokens} of {report.teacher_only_tokens} teacher-only, "
        f"[bold]{report.tokens_saved:.0%} saved[/bold] (audits included: {report.audit_calls})",
        f"served locally: {report.surrogate_turns} of {len(report.turns)} turns, first at turn "
        f"{report.first_local_turn}; rollbacks {report.rollbacks}; adaptation {report.adaptation_seconds:.0f} s",
    ]
    if report.local_similarity is not None:
        summary.append(
            f"similarity of local turns to the recorded answers: [bold]{report.local_similarity:.2f}[/bold] "
            "(MiniLM cosine; 1 = same meaning)"
        )
    summary.append(f"wrote {path} and {out / 'tokens.png'}")
    for line in summary:
        console.print(line)
    why = report.why_no_local_turn()
    if why:
        console.print(f"[yellow]No turn was served locally: {escape(why)}.[/yellow]")


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick/--full", help="reduced sizes (default) or the full runs")] = True,
    only: Annotated[list[str] | None, typer.Option(help="run only these benchmarks (file stems)")] = None,
    out: Annotated[Path, typer.Option(help="folder for the JSON results")] = Path("benchmarks/results"),
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="run the scripts, or only tabulate the JSON already in --out")
    ] = True,
) -> None:
    """Run the scripts in benchmarks/ and print one table of their headline figures
    (overhead, adaptation time, drift detection, token savings...)."""
    import subprocess

    table = Table("benchmark", "figure", "value")
    if not run:
        files = sorted(p for p in out.glob("*.json") if not only or p.stem in only)
        if not files:
            _fail(f"no benchmark results in {out}")
        for path in files:
            _bench_rows(table, path.stem, path)
        console.print(table)
        return
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not folder.is_dir():
        folder = Path("benchmarks")
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_") and _is_benchmark(p))
    if only:
        scripts = [p for p in scripts if p.stem in only]
    if not scripts:
        _fail(f"no benchmark scripts found in {folder} (run from a checkout of the project)")
    for script in scripts:
        target = out / f"{script.stem}.json"
        console.print(f"running {script.name}…")
        cmd = [sys.executable, str(script), "--out", str(target), *(["--quick"] if quick else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not target.exists():
            table.add_row(script.stem, "[red]failed[/red]", (proc.stderr.strip().splitlines() or ["?"])[-1][:80])
            continue
        _bench_rows(table, script.stem, target)
    console.print(table)


def _is_benchmark(script: Path) -> bool:
    """A runnable benchmark takes --out (helper modules such as data.py do not)."""
    return "--out" in script.read_text(encoding="utf-8", errors="replace")


# Leaf names that are headline figures, for results written without a "summary".
_FIGURE_ENDINGS = ("rate", "_s", "_ms", "seconds", "saved", "speedup", "fidelity", "_mean")


def bench_figures(data: Any, limit: int = 12) -> list[tuple[str, str]]:
    """(figure, value) rows of one benchmark's JSON: its ``summary`` when it has one, else its
    numeric leaves whose names read as figures (``default.test.detection_rate``), at most
    ``limit`` of them."""
    if not isinstance(data, dict):
        return []
    summary = data.get("summary")
    if isinstance(summary, dict) and summary:
        return [(str(k), _show(v)) for k, v in summary.items()]
    rows: list[tuple[str, str]] = []

    def walk(node: Any, prefix: str, depth: int) -> None:
        if not isinstance(node, dict) or depth > 3:
            return
        for k, v in node.items():
            name = f"{prefix}{k}"
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int | float) and str(k).endswith(_FIGURE_ENDINGS):
                rows.append((name, _show(v)))
            elif isinstance(v, dict):
                walk(v, f"{name}.", depth + 1)

    walk(data, "", 0)
    return rows[:limit]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _bench_rows(table: Table, name: str, path: Path) -> None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        table.add_row(name, "[red]unreadable[/red]", str(exc)[:80])
        return
    figures = bench_figures(data)
    if not figures:
        table.add_row(name, "[yellow]no figures[/yellow]", "")
    for key, value in figures:
        table.add_row(name, escape(key), escape(value))  # "adaptation_s[SmolLM2]" is not markup


@app.command("config")
def show_config(
    file: Annotated[Path | None, typer.Option(help="a TOML or YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The effective configuration and where each value came from."""
    from .config import ConfigError, load_with_sources

    try:
        cfg, sources = load_with_sources(file)
    except ConfigError as exc:
        _fail(str(exc))
    from .config import flat_fields

    values = flat_fields(cfg)
    if as_json:
        typer.echo(
            json.dumps({k: {"value": v, "source": sources[k]} for k, v in values.items()}, indent=1, default=str)
        )
        return
    table = Table("key", "value", "source")
    for k, v in values.items():
        table.add_row(k, str(v), sources[k])
    console.print(table)


def _engine(store: str | None, namespace: str) -> Any:
    from .engine import SomaEngine

    return SomaEngine(store=store, namespace=namespace)


@sessions_app.command("list")
def sessions_list(
    store: Annotated[str | None, typer.Option(help="store URL (default: user cache)")] = None,
    namespace: Annotated[str | None, typer.Option(help="only this namespace")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stored sessions, newest first."""
    engine = _engine(store, namespace or "default")
    rows = [
        {
            "namespace": s.namespace,
            "agent": s.agent,
            "session_id": s.session_id,
            "phase": s.phase,
            "turns": s.turn_count,
        }
        for s in engine.store.list_sessions(namespace)
    ]
    engine.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("namespace", "agent", "session", "phase", "turns")
    for r in rows:
        table.add_row(r["namespace"], r["agent"], r["session_id"][:60], r["phase"], str(r["turns"]))
    console.print(table)


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    store: Annotated[str | None, typer.Option(help="store URL (default: user cache)")] = None,
    namespace: Annotated[str, typer.Option()] = "default",
    agent: Annotated[str, typer.Option()] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One session: phase, counters, gate decisions and its turns."""
    engine = _engine(store, namespace)
    try:
        view = engine.session(session_id, agent=agent)
    except KeyError:
        _fail(f"no session {session_id!r} in namespace {namespace!r}")
    finally:
        engine.close()
    if as_json:
        data = {
            "session_id": view.session_id,
            "namespace": view.namespace,
            "agent": view.agent,
            "phase": view.phase.value,
            "adapter_id": view.adapter_id,
            "metrics": view.metrics,
            "decisions": view.decisions,
            "turns": [{k: v for k, v in t.to_dict().items() if k != "messages"} for t in view.turns],
        }
        typer.echo(json.dumps(data, indent=1, default=str))
        return
    adapter = "base (no adapter)" if view.metrics.get("served_by_detail") == "base" else view.adapter_id
    console.print(f"[bold]{view.session_id}[/bold] ({view.namespace}) phase={view.phase.value} adapter={adapter}")
    counters = Table("counter", "value")
    for k, v in view.metrics.items():
        counters.add_row(k, str(round(v, 2) if isinstance(v, float) else v))
    console.print(counters)
    turns = Table("turn", "served by", "phase", "latency ms", "in", "out", "query")
    for t in view.turns:
        turns.add_row(
            str(t.turn),
            t.served_by,
            t.phase,
            f"{t.latency_ms:.0f}",
            str(t.input_tokens),
            str(t.output_tokens),
            t.query[:50],
        )
    console.print(turns)


@sessions_app.command("delete")
def sessions_delete(
    session_id: str,
    store: Annotated[str | None, typer.Option()] = None,
    namespace: Annotated[str, typer.Option()] = "default",
) -> None:
    """Delete a session's records and adapters."""
    engine = _engine(store, namespace)
    found = engine.delete(session_id)
    engine.close()
    if not found:
        _fail(f"no session {session_id!r} in namespace {namespace!r}")
    console.print(f"deleted {session_id}")


@sessions_app.command("purge-expired")
def sessions_purge(store: Annotated[str | None, typer.Option()] = None) -> None:
    """Delete sessions (and adapters) past their TTL."""
    engine = _engine(store, "default")
    n = engine.purge_expired()
    engine.close()
    console.print(f"purged {n} expired session(s)")


def _registry_rows(engine: Any, refs: list[Any]) -> dict[str, list[Any]]:
    """Registry rows (sharing lineage) per adapter id, for the adapters listed."""
    rows: dict[str, list[Any]] = {}
    for namespace in sorted({r.namespace for r in refs}):
        for entry in engine.registry.entries(namespace):
            rows.setdefault(entry.adapter_id, []).append(entry)
    return rows


@adapters_app.command("list")
def adapters_list(
    store: Annotated[str | None, typer.Option(help="store URL (default: user cache)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Adapters on disk with their lineage: session, version, parent, and the sessions that
    adopted them (sharing)."""
    engine = _engine(store, "default")
    refs = engine.adapters.list()
    rows = _registry_rows(engine, refs)
    engine.close()
    if as_json:
        out = []
        for r in refs:
            entries = rows.get(r.adapter_id, [])
            out.append({**r.to_dict(), "registry": [{**e.to_dict(), "centroid": None} for e in entries]})
        typer.echo(json.dumps(out, indent=1))
        return
    table = Table("adapter", "namespace", "session", "version", "parent", "shareable", "adopted by", "size KiB")
    for r in refs:
        entries = rows.get(r.adapter_id, [])
        adopted = [e for e in entries if e.kind == "adopted"]
        table.add_row(
            r.adapter_id[:16],
            r.namespace[:12],
            r.session[:12],
            str(r.version),
            (r.parent or "")[:16],
            "yes" if any(e.shareable for e in entries) else "no",
            ", ".join(e.session[:8] for e in adopted) or "-",
            f"{r.size_bytes / 1024:.0f}",
        )
    console.print(table)


@adapters_app.command("show")
def adapters_show(adapter_id: str, store: Annotated[str | None, typer.Option()] = None) -> None:
    """Metadata of one adapter (prefix of its id is enough), its registry rows and lineage."""
    engine = _engine(store, "default")
    matches = [r for r in engine.adapters.list() if r.adapter_id.startswith(adapter_id)]
    if len(matches) != 1:
        engine.close()
        _fail(f"{len(matches)} adapters match {adapter_id!r}; give more of the id")
    ref = matches[0]
    entries = _registry_rows(engine, [ref]).get(ref.adapter_id, [])
    lineage = [engine.registry.lineage(e.namespace, e.adapter_id, e.session) for e in entries]
    engine.close()
    registry = [{**e.to_dict(), "centroid": None} for e in entries]
    typer.echo(json.dumps({**ref.to_dict(), "registry": registry, "lineage": lineage}, indent=1))


@adapters_app.command("delete")
def adapters_delete(adapter_id: str, store: Annotated[str | None, typer.Option()] = None) -> None:
    """Delete one adapter (sessions using it fall back to the teacher and re-adapt)."""
    engine = _engine(store, "default")
    matches = [r for r in engine.adapters.list() if r.adapter_id.startswith(adapter_id)]
    if len(matches) == 1:
        engine.adapters.delete(matches[0])
    engine.close()
    if len(matches) != 1:
        _fail(f"{len(matches)} adapters match {adapter_id!r}; give more of the id")
    console.print(f"deleted adapter {matches[0].adapter_id}")


@app.command()
def worker(
    store: Annotated[str, typer.Option(help="the apps' Redis store, e.g. redis://host:6379/0 (same URL and params)")],
    surrogate: Annotated[
        str | None, typer.Option(help="surrogate G: HF id or path; the same base model the apps serve with")
    ] = None,
    encoder: Annotated[str | None, typer.Option(help="encoder φ: sentence-transformers id or path")] = None,
    burst: Annotated[bool, typer.Option("--burst", help="run the queued jobs, then exit")] = False,
    lease: Annotated[int, typer.Option(help="seconds without a heartbeat before a job is re-queued")] = 30,
    name: Annotated[str | None, typer.Option(help="worker name (default: random)")] = None,
    max_jobs: Annotated[int | None, typer.Option(help="exit after this many jobs")] = None,
) -> None:
    """Run adaptation jobs from the queue (apps with adaptation="queue" and a Redis store)."""
    from .adaptation.queue import run_worker

    try:
        run_worker(store, surrogate=surrogate, encoder=encoder, burst=burst, lease=lease, name=name, max_jobs=max_jobs)
    except (ValueError, RuntimeError, ImportError) as exc:
        _fail(str(exc))


def main() -> None:
    logging.basicConfig(level=os.environ.get("SOMA_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
