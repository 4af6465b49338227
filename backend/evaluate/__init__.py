"""Evaluation of AVI-Talk: lip sync, upper-face dynamics, instruction text, instruction following, diversity.

``python -m backend evaluate ...`` runs ``main``; the protocol is in README.md here.
"""


def main(argv: list[str] | None = None) -> int:
    from .run import main as run_main  # torch and the pipeline load only when evaluating

    return run_main(argv)
