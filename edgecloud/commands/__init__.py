"""One module per subcommand, each with `add_parser(subparsers)` setting `run`."""

from . import archive, demo, export, serve, verify

COMMANDS = (export, archive, serve, verify, demo)
