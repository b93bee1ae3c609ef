"""One module per `sweep` subcommand, each with `register(subparsers)`. The commands import their
floors (`sweep.config` .. `sweep.report`) inside `run`, so `sweep --help` stays quick."""


class CommandError(Exception):
    """A problem with the user's input, found before any work: one line, exit code 2."""
