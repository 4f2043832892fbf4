import sys

from jaxnn.cli import main

sys.exit(main())
