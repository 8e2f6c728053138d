"""``python -m memhub``: the same as the ``memhub`` command (hooks use this form)."""

from memhub.cli.main import main

main()
