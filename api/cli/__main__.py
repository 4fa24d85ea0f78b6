"""``python -m api.cli``: the same as the ``twinning`` command."""

from api.cli import main

main()
