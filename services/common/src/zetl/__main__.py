from zetl.cli import main

main()
