from dncguard.cli import main

main()
