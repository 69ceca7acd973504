import sys

from stairbot.cli import main

sys.exit(main())
