"""One module per `sweep` subcommand, each with `register(subparsers)`."""
