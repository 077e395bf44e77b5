"""`python -m training`: see training/cli.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info and warnings

from training.cli import main

raise SystemExit(main())
