"""`python -m boomerang.cli ...` is `boomerang ...`."""

from boomerang.cli.main import main

if __name__ == "__main__":
    main()
