from tulip.cli.main import main

main()
