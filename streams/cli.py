"""The `yibao` command line: the streaming service, sending and tailing over Kafka, offline settlement."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import rich.progress
import typer
from rich.console import Console
from rich.table import Table

from connectors.files import LedgerFailure, settle_lines
from processors.exceptions import PolicyError
from processors.ledger import Ledger
from processors.policy import POLICY_ROOT, load_policies
from schemas.privacy import mask_id
from schemas.serde import encode

app = typer.Typer(add_completion=False, no_args_is_help=True, help="yibao: medical-insurance settlement.")


def _book(policies: Path):
    try:
        return load_policies(policies)
    except PolicyError as e:
        typer.echo(f"policy error, cannot start:\n{e}", err=True)
        raise typer.Exit(2) from None


def _ledger(policies: Path) -> Ledger:
    """An empty ledger as the service's: the same answer window (YIBAO_ANSWER_DAYS), so the same results."""
    from streams.settings import Settings
    return Ledger(_book(policies), Settings().answer_days)


@app.command()
def settle(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON-lines file, one event per line"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write results here (default: stdout)"),
    explain: bool = typer.Option(False, "--explain", help="print each settlement's derivation as a table"),
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
) -> None:
    """Settle EVENTS in order against in-memory state; write one result per event, in order."""
    ledger = _ledger(policies)
    out = output.open("wb") if output else sys.stdout.buffer
    screen = Console(stderr=output is None, highlight=False)
    counts = {"ok": 0, "refused": 0, "bad": 0}
    try:
        # A progress bar on the terminal while results go to a file; never in pipes or with --explain.
        quiet = output is None or explain or not sys.stderr.isatty()
        with rich.progress.open(events, "rb", description="settling", disable=quiet,
                                console=Console(stderr=True), transient=True) as f:
            for item in settle_lines(f, ledger):
                result = item.result
                out.write(item.data + b"\n")
                if result["infcode"] == 0:
                    counts["ok"] += 1
                elif item.event is None:
                    counts["bad"] += 1
                else:
                    counts["refused"] += 1
                if explain:
                    _explain(screen, item.lineno, result)
    except LedgerFailure as e:
        typer.echo(f"stopped: {e}", err=True)
        raise typer.Exit(3) from None
    finally:
        if output:
            out.close()
    typer.echo(f"{sum(counts.values())} events: {counts['ok']} ok, {counts['refused']} refused, "
               f"{counts['bad']} invalid", err=True)


def _explain(screen: Console, lineno: int, result: dict) -> None:
    if result["infcode"] != 0:
        screen.print(f"[red]line {lineno}: {result['infno']} {result['inf_refmsgid']}: {result['err_msg']}[/red]")
        return
    info = (result.get("output") or {}).get("setlinfo")
    if info is None or "setl_proc_info" not in info:
        return
    table = Table(
        title=f"line {lineno} · {info['medins_setl_id']} · psn {mask_id(info['psn_no'])} · "
              f"{info['benefit']} · {info['policy_id']}",
        title_justify="left",
    )
    table.add_column("policy key", style="cyan", no_wrap=True)
    table.add_column("calculation")
    for step in info["setl_proc_info"]:
        table.add_row(step["key"], step["calc"])
    table.add_section()
    for name in ("medfee_sumamt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "hifob_pay", "maf_pay",
                 "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "pkg_surplus_pay", "balc"):
        if info[name] or name in ("medfee_sumamt", "fund_pay_sumamt", "psn_cash_pay"):
            table.add_row(name, str(info[name]))
    if result["warn_msg"]:
        table.add_row("warn_msg", result["warn_msg"], style="yellow")
    screen.print(table)


@app.command()
def account(
    psn_no: str = typer.Argument(..., help="the person whose account to show"),
    events: Optional[Path] = typer.Argument(None, exists=True, dir_okay=False,
                                            help="JSON-lines file of events to settle offline first; "
                                                 "without it, ask the running service"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="HOST:PORT of the service's broker "
                                            "(default: KAFKA_BOOTSTRAP_SERVERS), when no EVENTS file is given"),
    as_json: bool = typer.Option(False, "--json", help="print the account as one JSON document (psn_no in full)"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds to wait for the service's answer"),
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
) -> None:
    """Show PSN_NO's account: balance, bindings, movements, year-to-date totals.

    Offline over EVENTS (settled first), or from the running service (an acct_query on insured.commands)."""
    if events is not None:
        ledger = _ledger(policies)
        try:
            with events.open("rb") as f:
                for _ in settle_lines(f, ledger):
                    pass
        except LedgerFailure as e:
            typer.echo(f"stopped: {e}", err=True)
            raise typer.Exit(3) from None
        if psn_no not in ledger.persons:
            typer.echo(f"person {mask_id(psn_no)} is not in {events}", err=True)
            raise typer.Exit(1)
        view = ledger.account(psn_no)
    else:
        view = _ask_account(psn_no, bootstrap, timeout)
    if as_json:
        sys.stdout.buffer.write(encode(view) + b"\n")
        return
    screen = Console(highlight=False)
    table = Table(title=f"account of {mask_id(psn_no)} · balance {view['balc']}", title_justify="left")
    for col in ("day", "movement", "amount", "reference", "balance after"):
        table.add_column(col, justify="right" if col in ("amount", "balance after") else "left")
    for m in view["history"]:
        table.add_row(m["day"] or "—", m["kind"], str(m["amount"]), m["ref"], str(m["balc"]))
    screen.print(table)
    for b in view["bindings"]:
        screen.print(f"draws on {mask_id(b['auth_psn_no'])} ({b['relation']}) from {b['begndate']}"
                     + (f" until {b['enddate']}" if "enddate" in b else ""))
    for b in view["authorizes"]:
        screen.print(f"pays for {mask_id(b['psn_no'])} ({b['relation']}) from {b['begndate']}"
                     + (f" until {b['enddate']}" if "enddate" in b else ""))
    for totals in view["totals"]:
        screen.print(f"{totals['year']} year to date: "
                     + ", ".join(f"{k} {v}" for k, v in totals.items() if v and k != "year"))


def _ask_account(psn_no: str, bootstrap: Optional[str], timeout: float) -> dict:
    """The account view from the running service: an acct_query and its answer on settle.results."""
    import asyncio
    import json
    import uuid
    from decimal import Decimal

    from connectors.client import Outgoing, send_events
    from streams.settings import Settings
    from streams.topics import COMMANDS
    msgid = f"Q{uuid.uuid4().hex[:24]}"  # a query changes nothing: any fresh id will do
    query = Outgoing(0, COMMANDS, psn_no.encode(), encode({"infno": "acct_query", "msgid": msgid,
                                                           "input": {"psn_no": psn_no}}), msgid)
    [answer] = asyncio.run(send_events(_bootstrap(bootstrap), [query], timeout, Settings().kafka_kwargs()))
    if answer is None:
        typer.echo(f"no answer within {timeout:.0f}s (see yibao tail rejected)", err=True)
        raise typer.Exit(1)
    result = json.loads(answer, parse_float=Decimal)
    if result["infcode"] != 0:
        typer.echo(result["err_msg"], err=True)
        raise typer.Exit(1)
    return result["output"]


clearing_app = typer.Typer(no_args_is_help=True, help="period clearing: per clearing pair and institution")
app.add_typer(clearing_app, name="clearing")


@clearing_app.command("report")
def clearing_report(
    events: Optional[Path] = typer.Argument(None, exists=True, dir_okay=False,
                                            help="JSON-lines file of events to settle offline (default: read the "
                                                 "running service's clearing.entries)"),
    period: str = typer.Option(..., "--period", help="the month to report, yyyy-MM (by settlement date)"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="also write the rows to this CSV file"),
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="HOST:PORT (default: KAFKA_BOOTSTRAP_SERVERS)"),
    idle: float = typer.Option(2.0, "--idle", help="stop reading clearing.entries after this many seconds without a record"),
) -> None:
    """Sum the PERIOD's settlements and cancels per clearing pair (treatment prefecture → insured
    prefecture) and institution, from EVENTS settled offline or from the service's clearing.entries;
    print the table, write the CSV."""
    import csv
    import re

    from processors.clearing import SUMS
    from processors.regions import name

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        typer.echo(f"--period {period!r}: give a month as yyyy-MM", err=True)
        raise typer.Exit(2)
    rows = _offline_rows(events, policies, period) if events is not None else _service_rows(bootstrap, idle, period)
    table = Table(title=f"clearing {period} · {len(rows)} rows", title_justify="left")
    for col in ("treatment place", "insured place", "institution", "settled", "cancelled", *SUMS):
        table.add_column(col, justify="left" if col in ("treatment place", "insured place", "institution") else "right")
    for r in rows:
        table.add_row(f"{r['mdtrtarea_admvs']} {name(r['mdtrtarea_admvs']) or ''}",
                      f"{r['insuplc_admdvs']} {name(r['insuplc_admdvs']) or ''}", r["fixmedins_code"],
                      str(r["settlements"]), str(r["cancels"]), *(str(r[k]) for k in SUMS))
    Console(highlight=False, width=None if sys.stdout.isatty() else 220).print(table)
    if csv_path is not None:
        with csv_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["setlym"])
            writer.writeheader()
            writer.writerows(rows)
        typer.echo(f"{len(rows)} rows written to {csv_path}")


@app.command()
def policies(
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
    diseases: bool = typer.Option(False, "--diseases", help="also list each rule set's chronic and special diseases"),
) -> None:
    """Load and validate the policies; list each rule set and when it applies (and its diseases)."""
    book = _book(policies)
    table = Table(title="rule sets")
    for col in ("id", "region", "from", "until (exclusive)", "settles"):
        table.add_column(col, overflow="fold")
    for p in book.policies:
        table.add_row(p.id, p.region, str(p.effective_from), str(p.effective_until or "—"), "yes" if p.settles else "no")
    screen = Console()
    screen.print(table)
    if not all(p.settles for p in book.policies):
        screen.print("settles no: the seeds give the region's remote-care rules only; its settlements are "
                     "refused NO_MONEY_POLICY with the routing decision")
    if not diseases:
        return
    for p in book.policies:
        listing = Table(title=f"{p.id}: diseases for 2503 filings and dise_codg (code, name or alias)",
                        title_justify="left")
        for col in ("code", "kind", "name (seed)", "alias"):
            listing.add_column(col, overflow="fold")
        kinds = ((("chronic 慢性病", p.chronic.diseases), ("special 特殊病", p.special.diseases)) if p.settles
                 else (("chronic 慢特病 (remote care)", p.remote_care.diseases),))
        for kind, entries in kinds:
            for d in entries:
                listing.add_row(d.code, kind, d.name, d.alias or "")
        screen.print(listing)


@app.command()
def run(
    population: Optional[Path] = typer.Option(None, "--population", exists=True, dir_okay=False,
                                              help="send this file's reference data (people, institutions, filings) first"),
    log_level: str = typer.Option("warning", "--log-level", help="worker log level"),
) -> None:
    """Run the streaming service: the embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set, then the worker."""
    from streams.service import serve
    from streams.settings import Settings
    try:
        code = serve(Settings(), population, log_level)
    except PolicyError as e:
        typer.echo(f"policy error, cannot start:\n{e}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _bootstrap(bootstrap: Optional[str]) -> str:
    from streams.settings import Settings
    value = bootstrap or Settings().bootstrap
    if not value:
        typer.echo("no broker: pass --bootstrap HOST:PORT (yibao run prints it) or set KAFKA_BOOTSTRAP_SERVERS", err=True)
        raise typer.Exit(2)
    return value


@app.command()
def send(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON-lines file, one event per line"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="HOST:PORT (default: KAFKA_BOOTSTRAP_SERVERS)"),
    timeout: float = typer.Option(120.0, "--timeout", help="seconds to wait for all results"),
) -> None:
    """Produce EVENTS in order and print each one's result (JSON lines, in file order)."""
    import asyncio

    from connectors.client import read_events, send_events
    from streams.settings import Settings
    outgoing, bad = read_events(events)
    for lineno, reason in bad:
        typer.echo(f"line {lineno}: not sent: {reason}", err=True)
    awaited = [e for e in outgoing if e.msgid]
    with rich.progress.Progress(console=Console(stderr=True), transient=True,
                                disable=len(awaited) < 1000 or not sys.stderr.isatty()) as progress:
        task = progress.add_task("results", total=len(awaited))
        results = asyncio.run(send_events(_bootstrap(bootstrap), outgoing, timeout, Settings().kafka_kwargs(),
                                          lambda: progress.advance(task)))
    missing = 0
    for e, result in zip(outgoing, results):
        if result is not None:
            sys.stdout.buffer.write(result + b"\n")
        else:
            missing += 1
            why = "it has no msgid" if not e.msgid else f"none within {timeout:.0f}s (see yibao tail rejected)"
            typer.echo(f"line {e.lineno}: no result for msgid {e.msgid}: {why}", err=True)
    sys.stdout.flush()
    typer.echo(f"{len(outgoing)} sent, {len(outgoing) - missing} results, {missing} missing", err=True)
    raise typer.Exit(1 if missing or bad else 0)


archive_app = typer.Typer(no_args_is_help=True, help="the audit archive: every record, in hash-chained Avro files")
app.add_typer(archive_app, name="archive")


@archive_app.command("run")
def archive_run(
    directory: Path = typer.Option(Path("archive"), "--dir", help="the archive directory"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="HOST:PORT (default: KAFKA_BOOTSTRAP_SERVERS)"),
    parent: Optional[int] = typer.Option(None, "--parent", help="stop when this process is no longer the parent"),
) -> None:
    """Archive every record of the service's topics into DIR until SIGTERM/SIGINT; then seal."""
    import asyncio
    import signal

    from streams.archiver import run as run_archiver
    from streams.settings import Settings

    async def main() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        settings = Settings()
        return await run_archiver(_bootstrap(bootstrap), directory, settings.kafka_kwargs(), stop, parent,
                                  settings.app_id)

    from connectors.archive import ArchiveBusy
    try:
        written = asyncio.run(main())
    except ArchiveBusy as e:
        typer.echo(f"cannot archive: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"archive {directory}: {written} records written, sealed", err=True)


@archive_app.command("verify")
def archive_verify(directory: Path = typer.Argument(..., exists=True, file_okay=False,
                                                    help="an archive, or a folder of archives (`yibao run`'s)")) -> None:
    """Check the manifest's hash chain and every file's SHA-256, count and offsets; name each problem."""
    from collections import Counter

    from connectors.archive import MANIFEST, read_manifest, verify

    archives = [directory] if (directory / MANIFEST).exists() else \
        sorted(p.parent for p in directory.glob(f"*/{MANIFEST}"))
    screen = Console(highlight=False, soft_wrap=True)
    if not archives:
        screen.print(f"[red]{directory}: no {MANIFEST} here or in a folder below[/red]")
        raise typer.Exit(1)
    bad = 0
    for archive in archives:
        problems, head = verify(archive)
        entries = [] if problems and "not JSON" in problems[0] else list(read_manifest(archive))
        per_topic = Counter()
        for e in entries:
            per_topic[e["topic"]] += e["records"]
        screen.print(f"[bold]{archive}[/bold]: " + ", ".join(f"{t} {n}" for t, n in sorted(per_topic.items())))
        for p in problems:
            screen.print(f"  [red]{p}[/red]")
        screen.print(f"  {len(entries)} segments, head {head}: " + ("[green]intact[/green]" if not problems
                                                                  else f"[red]{len(problems)} problems[/red]"))
        bad += bool(problems)
    raise typer.Exit(1 if bad else 0)


@app.command()
def replay(
    source: Optional[Path] = typer.Argument(None, help="an audit archive: a life's folder, or the folder of lives "
                                            "(`yibao run`'s archive/: the newest life is replayed)"),
    life: Optional[str] = typer.Option(None, "--life", help="the life to replay, by folder name (embedded-<UTC start>)"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="replay a running service's topics (HOST:PORT) "
                                            "instead of an archive: read from their start until --idle"),
    from_offset: Optional[int] = typer.Option(None, "--from-offset", min=0, help="compare the input events at this "
                                              "offset and after, in each partition of settle.requests and insured.commands"),
    from_time: Optional[str] = typer.Option(None, "--from-time", help="compare the input events recorded at this time "
                                            "and after (ISO-8601, UTC unless it names a zone; the Kafka record time)"),
    idle: float = typer.Option(3.0, "--idle", help="with --bootstrap: stop reading after this many seconds without a record"),
    period_text: Optional[str] = typer.Option(None, "--period", help="compare the settlements dated in yyyy-MM or "
                                              "yyyy-MM-dd..yyyy-MM-dd (the state is still rebuilt from the start)"),
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="the policy directory the service ran with"),
    policy: Optional[str] = typer.Option(None, "--policy", help="what-if: replay under this policy directory, or this "
                                         "rule set id (yibao policies) in force on every date"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="what-if: every settlement, recorded and replayed, as CSV"),
    chart_path: Optional[Path] = typer.Option(None, "--chart", help="what-if: fund pay per month as a PNG chart"),
    top: int = typer.Option(10, "--top", min=0, help="what-if: show this many of the largest individual changes"),
    show: int = typer.Option(20, "--show", min=0, help="print at most this many differences"),
    head: Optional[str] = typer.Option(None, "--head", help="the archive's head hash as published elsewhere: a "
                                       "manifest rewritten since then no longer ends with it"),
    partitions: Optional[int] = typer.Option(None, "--partitions", min=1, help="the service's partition count "
                                             "(default YIBAO_PARTITIONS, 4)"),
) -> None:
    """Re-run the recorded log through the same router, ledger and clearing code into empty state of its
    own and compare every record it gives with the one recorded (exit 1 on any difference or a failed
    archive check); with --policy, show what other rules would have paid instead (exit 0).

    Nothing is written to the service or its topics."""
    from connectors.archive import read_positions, verify
    from streams.replay import INPUTS, Replay, ReplayError, Scope, choose_archive, instant, period, read_archive, read_service
    from streams.settings import Settings
    from streams.topics import CLEARING, LEDGER_OPS

    screen = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    settings = Settings()
    try:
        if (source is None) == (bootstrap is None):
            raise ReplayError("give an archive directory or --bootstrap HOST:PORT (one of them)")
        if from_offset is not None and from_time is not None:
            raise ReplayError("give --from-offset or --from-time, not both")
        if (csv_path or chart_path) and policy is None:
            raise ReplayError("--csv and --chart write a what-if: give --policy too")
        first_day, last_day = period(period_text) if period_text else (None, None)
        scope = Scope(from_offset, instant(from_time) if from_time else None, first_day, last_day)
        book = _book(policies)
        new_book, new_label = book, None
        if policy is not None:
            new_book, new_label = _what_if_book(book, policy), Path(policy).name if Path(policy).is_dir() else policy
        problems: list[str] = []
        recorded_partitions = None  # what the archiver recorded (positions.json), when reading an archive
        if bootstrap is not None:
            log = read_service(bootstrap, settings.kafka_kwargs(), idle)
            screen.print(f"[bold]{bootstrap}[/bold]: read every topic from its start until {idle:g}s without a record")
        else:
            archive, found = choose_archive(source, life)
            others = f" (the newest of {len(found)} lives; --life to choose)" if len(found) > 1 and life is None else ""
            problems, head_now = verify(archive)
            if head is not None and head != head_now:
                problems.append(f"the head hash is {head_now}, not the published {head}: the manifest was rewritten")
            screen.print(f"[bold]{archive}[/bold]{others}: head {head_now}, "
                         + ("[green]intact[/green]" if not problems else f"[red]{len(problems)} problems[/red]"))
            for p in problems:
                screen.print(f"  [red]{p}[/red]")
            log, unread = read_archive(archive)
            recorded_partitions = (read_positions(archive) or {}).get("partitions")
            for f in unread:
                screen.print(f"  [red]{f}: not replayed (unreadable)[/red]")
            unsealed = list(archive.glob("*/*/*.avro.open"))
            if unsealed:
                screen.print(f"  [yellow]{len(unsealed)} unsealed segments are not replayed: the archiver is still "
                             "writing them (it seals them when the service stops)[/yellow]")
        total = log.count(*INPUTS, LEDGER_OPS, CLEARING)
        with rich.progress.Progress(rich.progress.TextColumn("replaying"), rich.progress.BarColumn(),
                                    rich.progress.MofNCompleteColumn(), _Rate(), rich.progress.TimeRemainingColumn(),
                                    console=Console(stderr=True), transient=True,
                                    disable=total < 2000 or not sys.stderr.isatty()) as progress:
            task = progress.add_task("replay", total=total)
            runner = Replay(log, new_book, partitions or recorded_partitions or settings.partitions,
                            settings.max_message_bytes, scope, compare=policy is None,
                            inputs_may_expire=bootstrap is not None, advance=lambda n: progress.advance(task, n),
                            answer_days=settings.answer_days)
            outcome = runner.run()
    except ReplayError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    _replay_head(screen, outcome, scope, period_text, new_label or ", ".join(p.id for p in book.policies))
    if policy is not None:
        _what_if(screen, outcome, runner, new_label, csv_path, chart_path, top)
        raise typer.Exit(1 if problems else 0)
    _replay_tallies(screen, outcome)
    for d in outcome.differences[:show]:
        _difference(screen, d)
    if len(outcome.differences) > show:
        screen.print(f"… {len(outcome.differences) - show} more differences (--show N)")
    raise typer.Exit(1 if problems or outcome.differences else 0)


class _Rate(rich.progress.ProgressColumn):
    """Records taken per second (input events, ledger ops, clearing records)."""

    def render(self, task) -> str:
        return f"{task.speed:,.0f} events/s" if task.speed else "… events/s"


def _what_if_book(book, policy: str):
    from streams.replay import ReplayError

    if Path(policy).is_dir():
        return _book(Path(policy))
    try:
        return book.forcing(policy)
    except KeyError:
        raise ReplayError(f"--policy {policy}: neither a policy directory nor a rule set id "
                          f"({', '.join(p.id for p in book.policies)})") from None


def _replay_head(screen: Console, outcome, scope, period_text: Optional[str], rules: str) -> None:
    from schemas.avro import message_time

    first = outcome.first_event
    window = ""
    if scope.windowed:
        window = (f" from {first.where}, recorded {message_time(first.timestamp_ms)}" if first
                  else " [yellow](none in the window)[/yellow]")
    screen.print(f"{outcome.events} events{window}, {outcome.ops} ledger ops, rules {rules}"
                 + (f", settlements dated {period_text}" if period_text else "")
                 + (f"; {outcome.foreign} foreign records (dead-lettered)" if outcome.foreign else "")
                 + (f"; {outcome.unchecked} ops whose input has expired from its topic, taken as recorded"
                    if outcome.unchecked else ""))


def _replay_tallies(screen: Console, outcome) -> None:
    table = Table(title="replay: recomputed vs recorded", title_justify="left")
    for col in ("topic", "recorded", "recomputed", "identical", "different", "only recorded", "only recomputed", "copies"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for topic, t in outcome.tallies.items():
        table.add_row(topic, *(str(v) for v in (t.recorded, t.recomputed, t.identical, t.different, t.only_recorded,
                                                 t.only_recomputed, t.copies)))
    screen.print(table)
    if outcome.identical:
        screen.print("[green]identical: every recomputed record equals the recorded one[/green] (copies: records the "
                     "service wrote more than once, at-least-once delivery)")
    else:
        screen.print(f"[red]{len(outcome.differences)} differences[/red]")


def _shown(path: str, value) -> str:
    from streams.replay import MISSING

    if value is MISSING:
        return MISSING
    last = path.rsplit(".", 1)[-1].split("[")[0]
    if last in ("psn_no", "auth_psn_no", "cntr_psn_no", "certno", "group") and isinstance(value, str):
        return mask_id(value)
    if last == "psn_name" and isinstance(value, str):
        return "*" * len(value)
    text = value.hex() if isinstance(value, bytes) else str(value)
    return text if len(text) <= 120 else text[:117] + "…"


def _difference(screen: Console, d) -> None:
    screen.print(f"[bold red]{d.kind}[/bold red] {d.topic} · {d.what} · {d.where}" + (f" · {d.day}" if d.day else ""))
    if d.fields:
        table = Table(show_edge=False, pad_edge=False)
        for col in ("field", "recorded", "recomputed"):
            table.add_column(col, overflow="fold")
        for path, old, new in d.fields:
            table.add_row(path, _shown(path, old), _shown(path, new))
        screen.print(table)
    old, new = d.derivations
    if old is not None or new is not None:
        table = Table(title="derivation", title_justify="left", show_edge=False, pad_edge=False)
        for col in ("step", "recorded", "recomputed"):
            table.add_column(col, overflow="fold")
        for i in range(max(len(old or ()), len(new or ()))):
            a = old[i] if old and i < len(old) else None
            b = new[i] if new and i < len(new) else None
            style = None if a == b else "yellow"
            table.add_row((a or b)["key"], a["calc"] if a else "—", b["calc"] if b else "—", style=style)
        screen.print(table)


def _what_if(screen: Console, outcome, runner, label: str, csv_path: Optional[Path], chart_path: Optional[Path],
             top: int) -> None:
    from streams.whatif import MONEY, fund_name, largest, pairs, summarize, write_chart, write_csv

    found = pairs(outcome, runner)
    summary = summarize(found)

    def money_table(title: str, rows) -> None:
        table = Table(title=title, title_justify="left")
        for col in ("", "recorded", f"what-if ({label})", "change"):
            table.add_column(col, justify="left" if not col else "right")
        for name, (old, new) in rows:
            table.add_row(name, str(old), str(new), f"{new - old:+}")
        screen.print(table)

    screen.print(f"what-if: {len(found)} settlements and cancels, as recorded and under {label}")
    money_table("totals", ((k, summary.totals[k]) for k in MONEY))
    money_table("per fund (setldetail fund_pay_type)", ((fund_name(k), v) for k, v in summary.funds.items()))
    table = Table(title="per benefit (fund_pay_sumamt)", title_justify="left")
    for col in ("benefit", "settled", "recorded", "settled (what-if)", "what-if", "change"):
        table.add_column(col, justify="left" if col == "benefit" else "right")
    for benefit, (n_old, old, n_new, new) in summary.benefits.items():
        table.add_row(benefit, str(n_old), str(old), str(n_new), str(new), f"{new - old:+}")
    screen.print(table)
    screen.print(f"persons: {summary.better} better off (pay less themselves, psn_part_amt), {summary.worse} worse off, "
                 f"{summary.same} unchanged; {summary.only_old} settled as recorded but refused under {label}, "
                 f"{summary.only_new} refused as recorded but settled under {label}")
    biggest = largest(found, top)
    if biggest:
        table = Table(title=f"largest changes (of {sum(bool(p.change() or p.change('psn_part_amt')) for p in found)})",
                      title_justify="left")
        for col in ("setl_id", "date", "person", "benefit", "fund recorded", "fund what-if", "change", "own part change"):
            table.add_column(col, justify="right" if col in ("fund recorded", "fund what-if", "change", "own part change") else "left")
        for p in biggest:
            info = p.any
            table.add_row(p.setl_id, info["setl_time"][:10], mask_id(info["psn_no"]), info["benefit"],
                          str(p.money("old", "fund_pay_sumamt")) if p.old else "refused",
                          str(p.money("new", "fund_pay_sumamt")) if p.new else "refused",
                          f"{p.change():+}", f"{p.change('psn_part_amt'):+}")
        screen.print(table)
    if csv_path is not None:
        write_csv(found, csv_path)
        screen.print(f"{len(found)} rows written to {csv_path}")
    if chart_path is not None:
        write_chart(summary, chart_path, label)
        screen.print(f"chart written to {chart_path}")


def _offline_rows(events: Path, policies: Path, period: str) -> list[dict]:
    from processors.clearing import Clearing

    ledger, clearing = _ledger(policies), Clearing()
    try:
        with events.open("rb") as f:
            for _ in settle_lines(f, ledger, clearing):
                pass
    except LedgerFailure as e:
        typer.echo(f"stopped: {e}", err=True)
        raise typer.Exit(3) from None
    return clearing.rows(period)


def _service_rows(bootstrap: Optional[str], idle: float, period: str) -> list[dict]:
    """Replay clearing.entries, every partition from its start, as the clearing agent does (closes
    included, so a closed month's late entries count where the agent counted them)."""
    import asyncio

    from connectors.client import tail as tail_topic
    from streams.clearing import PartitionClearing
    from streams.settings import Settings
    from streams.topics import CLEARING

    clearings = PartitionClearing()

    def take(record) -> None:
        if record.partition not in clearings.states:
            clearings.reset(record.partition)
        clearings.apply(record.partition, record.offset, record.value, emit=False,
                        headers={k: v for k, v in (record.headers or [])})

    asyncio.run(tail_topic(_bootstrap(bootstrap), CLEARING, True, None, Settings().kafka_kwargs(), take, idle))
    rows = [row for state in clearings.states.values() for row in state.rows(period)]
    return sorted(rows, key=lambda r: (r["mdtrtarea_admvs"], r["insuplc_admdvs"], r["fixmedins_code"]))


TAIL_TOPICS = {"requests": "settle.requests", "commands": "insured.commands", "ops": "ledger.ops",
               "results": "settle.results", "rejected": "settle.rejected", "clearing": "clearing.entries",
               "statements": "clearing.statements"}


@app.command()
def tail(
    topic: str = typer.Argument("results", help=f"one of {', '.join(TAIL_TOPICS)} (or a topic name)"),
    bootstrap: Optional[str] = typer.Option(None, "--bootstrap", help="HOST:PORT (default: KAFKA_BOOTSTRAP_SERVERS)"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="start at the oldest record"),
    count: Optional[int] = typer.Option(None, "--count", help="stop after this many records"),
    idle: Optional[float] = typer.Option(None, "--idle", help="stop after this many seconds without a record"),
) -> None:
    """Follow a topic, one readable line per record (personal numbers masked)."""
    import asyncio

    from connectors.client import tail as tail_topic
    from streams.settings import Settings
    from streams.view import describe
    name = TAIL_TOPICS.get(topic, topic)
    screen = Console(highlight=False, soft_wrap=True)
    try:
        asyncio.run(tail_topic(_bootstrap(bootstrap), name, from_beginning, count, Settings().kafka_kwargs(),
                               lambda r: screen.print(describe(name, r)), idle))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    app()
