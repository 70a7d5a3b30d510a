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
                out.write(encode(result) + b"\n")
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
