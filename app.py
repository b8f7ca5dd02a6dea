"""The Verbatim page: `python app.py` (the same as `verbatim serve`); see qa/serve/server.py."""
import sys

from qa.serve.server import main

if __name__ == "__main__":
    sys.exit(main())
