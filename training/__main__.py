"""`python -m training`: see training/cli.py."""

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info and warnings


def _main() -> int:
    # The serve-only install (`pip install .`) has no TensorFlow: say what to install instead
    # of an ImportError traceback.
    missing = [name for name in ("tensorflow", "keras") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"python -m training needs {' and '.join(missing)}: pip install '.[train]'",
            file=sys.stderr,
        )
        return 2
    from training.cli import main

    return main()


raise SystemExit(_main())
