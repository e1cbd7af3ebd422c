"""One module per ``ddspbench`` sub-command (``HELP``, ``add_arguments``, ``run``)."""
