import sys

from couchpy_cli import main

sys.exit(main())
