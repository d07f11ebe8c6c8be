"""`python -m tunesmith ...` (also what `torchrun -m tunesmith train CONFIG` runs)."""

from tunesmith.cli import main

if __name__ == "__main__":
    main()
