"""``python -m hftune`` is the ``hftune`` command."""

from hftune.cli.main import main

main()
