import sys

from rag.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module (rag.search.build)
    sys.exit(main())
