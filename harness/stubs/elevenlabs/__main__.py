"""`python -m harness.stubs.elevenlabs`: serve the stub (see `app`)."""

import sys

from harness.stubs.elevenlabs.app import main

sys.exit(main())
