"""``python -m phototag``: the ``phototag`` command."""

from .cli import main

main()
