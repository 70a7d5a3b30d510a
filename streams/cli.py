"""The `yibao` command line: offline settlement of an event file, and a look at the loaded policies."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import rich.progress
import typer
from rich.console import Console
from rich.table import Table

from connectors.files import settle_lines
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


@app.command()
def settle(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON-lines file, one event per line"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write results here (default: stdout)"),
    explain: bool = typer.Option(False, "--explain", help="print each settlement's derivation as a table"),
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
) -> None:
    """Settle EVENTS in order against in-memory state; write one result per event, in order."""
    ledger = Ledger(_book(policies))
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
def policies(
    policies: Path = typer.Option(POLICY_ROOT, "--policies", help="policy directory (one sub-directory per region)"),
) -> None:
    """Load and validate the policies; list each rule set and when it applies."""
    book = _book(policies)
    table = Table(title="rule sets")
    for col in ("id", "region", "from", "until (exclusive)"):
        table.add_column(col)
    for p in book.policies:
        table.add_row(p.id, p.region, str(p.effective_from), str(p.effective_until or "—"))
    Console().print(table)


if __name__ == "__main__":
    app()
