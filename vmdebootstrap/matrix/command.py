"""The command line of vmdebootstrap-matrix (docs/scale-out.md, vmdebootstrap-matrix(1)).

    check MATRIX             validate; print each job's command
    pipeline MATRIX -o FILE  write the GitLab CI file
    summary --out DIR PATH...  the cells' reports as Markdown, HTML and one JUnit file
    preflight [--matrix M]   what this runner lacks, one line each
    cache restore|save DIR   the base and stage cache entries to and from tar files (cachepack.py)
    proxy URL                whether the apt proxy answers (the jobs ask before using it)

Exit status: 0 done; 1 preflight found something missing, or the proxy does not answer;
2 bad input (every problem of the matrix file on a line of its own), nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .. import __version__
from ..config import parse_size
from ..errors import UsageError
from . import cachepack, keys, loader, pipeline, preflight, summary
from .commands import TOOL, boot_argv, build_argv
from .problems import MatrixError, Problem
from .spec import Matrix

PROG = "vmdebootstrap-matrix"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Build an image matrix as a GitLab CI pipeline: one vmdebootstrap "
                     "build per cell, boot tests, and a summary of every cell's report.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    check = commands.add_parser("check", help="validate MATRIX and print the command of each job")
    check.add_argument("matrix", metavar="MATRIX", type=Path, help="the matrix file (YAML)")
    check.add_argument("--json", action="store_true", help="print the jobs as JSON: job, cell, argv")
    _tool_options(check, matrix_tool=False)
    generate = commands.add_parser("pipeline", help="write the GitLab CI file of MATRIX")
    generate.add_argument("matrix", metavar="MATRIX", type=Path, help="the matrix file (YAML)")
    generate.add_argument("-o", "--output", metavar="FILE", type=Path, required=True,
                          help="the GitLab CI file to write (e.g. .gitlab-ci.yml)")
    generate.add_argument("--no-cache-keys", action="store_true",
                          help="do not ask vmdebootstrap for each cell's cache keys: each cell keeps caches of "
                          "its own, keyed by its name")
    _tool_options(generate)
    report = commands.add_parser("summary", help="merge the cells' reports into DIR/summary.md, "
                                 "DIR/public/index.html and DIR/junit.xml")
    report.add_argument("--out", metavar="DIR", type=Path, required=True, help="where to write them")
    report.add_argument("--matrix", metavar="FILE", type=Path, help="the matrix: every cell gets a row, "
                        "a cell without a report a failed one")
    report.add_argument("paths", metavar="PATH", type=Path, nargs="+",
                        help="a report.json, or a directory searched for them (out/)")
    check_runner = commands.add_parser("preflight", help="check what this runner must allow, one line for "
                                       "each thing missing")
    check_runner.add_argument("--matrix", metavar="FILE", type=Path,
                              help="also check the qemu-user handlers of its foreign architectures")
    check_runner.add_argument("--min-free", metavar="SIZE", default="20G",
                              help="free space wanted where the outputs and the work directory go "
                              "(default: 20G)")
    cache = commands.add_parser("cache", help="unpack the base and stage cache entries GitLab restored "
                                "(restore), or pack those a build made (save)")
    cache.add_argument("action", choices=("restore", "save"), help="restore or save")
    cache.add_argument("dir", metavar="DIR", type=Path, help="the --cache-dir of the builds")
    cache.add_argument("--base", metavar="KEY", action="append", default=[], help="save: this base entry "
                       "(default: every entry)")
    cache.add_argument("--stage", metavar="KEY", action="append", default=[], help="save: this stage entry")
    proxy = commands.add_parser("proxy", help="exit 0 if the apt proxy URL answers, 1 (with a line "
                                "saying so) if not")
    proxy.add_argument("url", metavar="URL", help="http://HOST:PORT")
    return parser


def _tool_options(parser: argparse.ArgumentParser, matrix_tool: bool = True) -> None:
    parser.add_argument("--vmdebootstrap", metavar="COMMAND", default=TOOL,
                        help=f"the vmdebootstrap the jobs run (default: {TOOL})")
    if matrix_tool:
        parser.add_argument("--vmdebootstrap-matrix", metavar="COMMAND", default=PROG,
                            help=f"the vmdebootstrap-matrix the jobs run (default: {PROG})")


def jobs(matrix: Matrix, tool: str) -> list[tuple[str, str, list[str]]]:
    """(job, cell slug, argv) of every vmdebootstrap job, in the matrix's order."""
    found = []
    for cell in matrix.cells:
        found.append((f"build {cell.label}", cell.slug, build_argv(cell, tool, matrix.cache_dir)))
        if cell.boots:
            found.append((f"boot {cell.label}", cell.slug, boot_argv(cell, tool)))
        if cell.reproducible:
            found.append((f"rebuild {cell.label}", cell.slug, build_argv(cell, tool, matrix.cache_dir,
                                                                          rebuild=True)))
    return found


def run_check(args: argparse.Namespace) -> int:
    matrix = loader.load(args.matrix)
    found = jobs(matrix, args.vmdebootstrap)
    if args.json:
        print(json.dumps([{"job": job, "cell": slug, "argv": argv} for job, slug, argv in found], indent=2))
        return 0
    for job, _slug, argv in found:
        print(f"{job}: {shlex.join(argv)}")
    boots = sum(1 for cell in matrix.cells if cell.boots)
    print(f"{args.matrix}: OK: {len(matrix.cells)} cells, {boots} boot tests", file=sys.stderr)
    return 0


def cache_keys(matrix: Matrix, ask: bool, tool: str) -> dict[str, keys.CacheKeys]:
    """Each cell's keys, by slug: the tool's (``ask``), else from the cell's name."""
    found, problems = {}, []
    for cell in matrix.cells:
        try:
            found[cell.slug] = keys.from_tool(cell, tool) if ask else keys.from_name(cell)
        except keys.KeysUnknown as exc:
            problems.append(Problem(str(matrix.path), cell.variant.line, cell.label,
                                    f"{exc} (--no-cache-keys: keys from the cells' names)"))
    if problems:
        raise MatrixError(problems)
    return found


def run_pipeline(args: argparse.Namespace) -> int:
    matrix = loader.load(args.matrix)
    how = pipeline.Generation(os.path.relpath(args.matrix), args.vmdebootstrap, args.vmdebootstrap_matrix)
    text = pipeline.dump(pipeline.document(matrix, cache_keys(matrix, not args.no_cache_keys, how.tool), how),
                         how.matrix_file)
    partial = args.output.with_name(f".{args.output.name}.partial")
    partial.write_text(text)
    os.replace(partial, args.output)
    print(f"{args.output}: {len(matrix.cells)} cells", file=sys.stderr)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    matrix = loader.load(args.matrix) if args.matrix is not None else None
    written = summary.summarize(matrix, args.out, args.paths)
    for row in written.rows:
        print(f"{row.label}: {row.status}" + (f": {row.detail}" if row.detail else ""))
    print("wrote " + ", ".join(str(path) for path in written.files), file=sys.stderr)
    return 0


def run_preflight(args: argparse.Namespace) -> int:
    needed = parse_size(args.min_free, "--min-free")
    arches = [cell.arch for cell in loader.load(args.matrix).cells] if args.matrix is not None else None
    outcome = preflight.check(arches, needed)
    print("\n".join(outcome.lines()))
    return 0 if outcome.ok else 1


def run_cache(args: argparse.Namespace) -> int:
    if args.action == "restore":
        said = cachepack.restore(args.dir)
    else:
        named = {"base": args.base, "stage": args.stage} if args.base or args.stage else None
        said = cachepack.save(args.dir, named)
    for line in said:
        print(f"cache {args.action}: {line}")
    return 0


def run_proxy(args: argparse.Namespace) -> int:
    why = preflight.reach(args.url)
    if why:
        print(f"apt proxy: no answer: {why}: building without it", file=sys.stderr)
        return 1
    return 0


RUN = {"check": run_check, "pipeline": run_pipeline, "summary": run_summary, "preflight": run_preflight,
       "cache": run_cache, "proxy": run_proxy}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        return RUN[args.command](args)
    except MatrixError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
