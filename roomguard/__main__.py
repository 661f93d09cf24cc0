"""`python -m roomguard`: the same command line as the installed `roomguard` script."""

from roomguard import main

main()
