"""vmdebootstrap-matrix: many images as one GitLab CI pipeline (docs/scale-out.md).

A matrix file names releases, architectures and configurations; each cell is one plain
vmdebootstrap build.  The package reads vmdebootstrap's own records (the option table,
the releases, the architectures) and nothing of vmdebootstrap imports it.

    problems.py    a problem of the matrix file: FILE:LINE: KEY: cause
    nodes.py       the YAML nodes, with their lines
    settingcheck.py  the vmdebootstrap options a matrix gives, checked against the option table
    axes.py        the axes: release, arch, config, output
    expand.py      the cells: the product less the excluded, with their options
    loader.py      load(): the file, validated and expanded
    spec.py        the records: Matrix, Cell, Variant
    commands.py    a cell's vmdebootstrap command lines: build, boot test, rebuild
    processes.py   the commands this package runs itself
    keys.py        the tool's cache keys of a cell
    pipeline.py    the GitLab CI file
    reports.py     a cell's reports read back
    tables.py      the summary as Markdown and as HTML
    junitfiles.py  the cells' JUnit files combined
    summary.py     the summary subcommand
    preflight.py   what a runner must allow
    command.py     the command line (the entry point main)
    manual.py      its man page, from its parser
"""
