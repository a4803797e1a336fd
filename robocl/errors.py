"""The one error type for bad input (a config value, a data file, a model file).

Its message is the one line the user sees; the command-line layer maps it to exit code 2.
Library modules raise it without importing the CLI.
"""


class UsageError(Exception):
    """A bad command line, config value or input file; the message is the one line the user sees."""
