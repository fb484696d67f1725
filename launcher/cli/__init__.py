"""The ``launch`` command: a thin Click layer over the library.

One module per command; :mod:`launcher.cli._common` holds what they share.
Commands only convert options and call library functions.
"""

from __future__ import annotations

from launcher.cli.capacity import capacity
from launcher.cli.compare import compare
from launcher.cli.probe import probe
from launcher.cli.profiles import profiles
from launcher.cli.report import report
from launcher.cli.root import main
from launcher.cli.serve_config import serve_config
from launcher.cli.systemd import systemd_command

main.add_command(profiles)
main.add_command(probe)
main.add_command(report)
main.add_command(systemd_command)
main.add_command(capacity)
main.add_command(compare)
main.add_command(serve_config)

__all__ = ["main"]
