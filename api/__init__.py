"""The processes' entry points: the HTTP app and the ``supportbot`` command line."""
