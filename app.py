"""The Verbatim page: `python app.py` (the same as `verbatim serve`); see qa/serve/page.py."""
import sys

from qa.serve.page import main

if __name__ == "__main__":
    sys.exit(main())
