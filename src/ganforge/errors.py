"""The one exception type for a user's mistake: the CLI prints its message as one sentence."""


class GanforgeError(Exception):
    """A problem with the user's input (names, files, options, data), explained in one sentence."""
