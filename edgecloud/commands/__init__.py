"""One module per subcommand, each with `add_parser(subparsers)` setting `run`."""

from . import aggregate, archive, build, demo, export, federated, serve, verify, versions

COMMANDS = (build, export, archive, serve, verify, demo, federated, versions, aggregate)
