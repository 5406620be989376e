"""What can go wrong for an operator, each with the exit code scripts can branch on."""

EXIT_FAILURE = 1
EXIT_USAGE = 2  # also what typer uses for a bad option
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
EXIT_NOT_FOUND = 5


class CliError(Exception):
    """A failure the CLI reports as one clear line on stderr, then exits with ``exit_code``."""

    exit_code = EXIT_FAILURE


class InvalidInput(CliError):
    """Options that parse but do not make a valid message (a bad account name, say)."""

    exit_code = EXIT_USAGE


class StackNotFound(CliError):
    """Neither a stack file nor ``ORDO_NATS_URL``: there is nothing to talk to."""

    exit_code = EXIT_UNREACHABLE


class StackUnreachable(CliError):
    """The stack is known but does not answer (NATS down, no responder, no stream)."""

    exit_code = EXIT_UNREACHABLE


class RequestTimedOut(CliError):
    """A request was sent but no reply came in time."""

    exit_code = EXIT_TIMEOUT


class NothingFound(CliError):
    """The thing asked for does not exist (no trace for an id)."""

    exit_code = EXIT_NOT_FOUND
