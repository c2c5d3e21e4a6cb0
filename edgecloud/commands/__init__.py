"""One module per subcommand, each with `add_parser(subparsers)` setting `run`."""

from . import archive, demo, export, serve

COMMANDS = (export, archive, serve, demo)
