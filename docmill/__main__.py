import sys

from docmill.cli import main

sys.exit(main())
